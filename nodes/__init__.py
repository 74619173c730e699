"""ComfyUI adapters for adaptive_core: node classes and their registration."""
from .calibration_nodes import AdaptiveCalibrateThreshold, AdaptiveOracleSkipPath
from .sampler_nodes import AdaptiveDiffusionPatch, AdaptiveKSampler, AdaptiveKSamplerAdvanced
from .skip_path_nodes import AdaptiveSkipPathLoad, AdaptiveSkipPathSave
from .visual_nodes import AdaptiveSkipMaskPreview, AdaptiveSkipStats

NODE_CLASS_MAPPINGS = {
    "AdaptiveKSampler": AdaptiveKSampler,
    "AdaptiveKSamplerAdvanced": AdaptiveKSamplerAdvanced,
    "AdaptiveDiffusionPatch": AdaptiveDiffusionPatch,
    "AdaptiveSkipPathSave": AdaptiveSkipPathSave,
    "AdaptiveSkipPathLoad": AdaptiveSkipPathLoad,
    "AdaptiveOracleSkipPath": AdaptiveOracleSkipPath,
    "AdaptiveCalibrateThreshold": AdaptiveCalibrateThreshold,
    "AdaptiveSkipMaskPreview": AdaptiveSkipMaskPreview,
    "AdaptiveSkipStats": AdaptiveSkipStats,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AdaptiveKSampler": "Adaptive KSampler",
    "AdaptiveKSamplerAdvanced": "Adaptive KSampler (Advanced)",
    "AdaptiveDiffusionPatch": "AdaptiveDiffusion (model patch)",
    "AdaptiveSkipPathSave": "Save Skip Path",
    "AdaptiveSkipPathLoad": "Load Skip Path",
    "AdaptiveOracleSkipPath": "Oracle Skip Path",
    "AdaptiveCalibrateThreshold": "Calibrate Threshold (δ)",
    "AdaptiveSkipMaskPreview": "Skip Mask Preview",
    "AdaptiveSkipStats": "Skip Stats",
}
