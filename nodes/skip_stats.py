"""The Skip Stats text of a trace. Host-free, and no plotting library needed."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..adaptive_core import AdaptiveTrace


def stats_text(trace: "AdaptiveTrace") -> str:
    """The summary, the mask (■ computed, □ skipped), the call counts, settings and notes."""
    config = trace.config
    lines = [trace.summary(), trace.mask_text() or "(no steps)",
             f"model calls: {trace.model_calls} run, {trace.cached_calls} answered from the cache",
             f"settings: δ {config.threshold:g}, max_skip_steps {config.max_skip_steps}, "
             f"warmup_steps {config.warmup_steps}, keep_last_steps {config.keep_last_steps}, "
             f"noise_reuse {config.noise_reuse}"]
    lines += [f"note: {note}" for note in trace.notes]
    return "\n".join(lines)
