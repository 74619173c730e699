"""AdaptiveDiffusion, host-free: the skip criterion, the noise cache and the per-run record.

Nothing here imports ComfyUI; `nodes/` adapts it to the host.
"""
from .config import DEFAULT_NOISE_REUSE, LIMITS, NOISE_REUSE_MODES, AdaptiveConfig, config_problem
from .criterion import criterion_value, mean_abs_change, should_skip
from .noise_cache import CacheKey, NoiseCache, extrapolate, implied_noise, prediction_gap
from .run import AdaptiveRun
from .skip_path import SkipPath, SkipPathError, parse_skip_path, skip_path_json
from .step_clock import StepClock
from .trace import AdaptiveTrace, StepRecord

__all__ = [
    "AdaptiveConfig", "AdaptiveRun", "AdaptiveTrace", "CacheKey", "DEFAULT_NOISE_REUSE", "LIMITS",
    "NOISE_REUSE_MODES", "NoiseCache", "SkipPath", "SkipPathError", "StepClock", "StepRecord",
    "config_problem", "parse_skip_path", "skip_path_json",
    "criterion_value", "extrapolate", "implied_noise", "mean_abs_change", "prediction_gap", "should_skip",
]
