"""ComfyUI adapters for adaptive_core: node classes and their registration."""
from .sampler_nodes import AdaptiveDiffusionPatch, AdaptiveKSampler, AdaptiveKSamplerAdvanced

NODE_CLASS_MAPPINGS = {
    "AdaptiveKSampler": AdaptiveKSampler,
    "AdaptiveKSamplerAdvanced": AdaptiveKSamplerAdvanced,
    "AdaptiveDiffusionPatch": AdaptiveDiffusionPatch,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AdaptiveKSampler": "Adaptive KSampler",
    "AdaptiveKSamplerAdvanced": "Adaptive KSampler (Advanced)",
    "AdaptiveDiffusionPatch": "AdaptiveDiffusion (model patch)",
}
