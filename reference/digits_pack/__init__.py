"""Demo-only ComfyUI nodes for the trained reference model (not part of the product's node list).

The demo, the benchmark and the tests load this folder as a second custom-node pack.
"""
from __future__ import annotations

import torch

from .digits_model import IMAGE_SIZE, NULL_CLASS, class_conditioning, load_digits_model, to_image
from .flow_model import VARIANTS, WHOLE, load_flow_model

CLASS_CHOICES = [str(digit) for digit in range(10)] + ["none"]


class AdaptiveDemoDigitsModel:
    DESCRIPTION = "The trained 16×16 handwritten-digits diffusion model (ε-prediction, SD schedule)."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"
    CATEGORY = "adaptive diffusion demo"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def load(self):
        return (load_digits_model(),)


class AdaptiveDemoFlowDigitsModel:
    DESCRIPTION = ("The digits model trained by flow matching (velocity, shift 3, like SD3/Flux/Wan), "
                   "or one of a Wan 2.2-like pair of experts: high-noise (σ above 0.875) and low-noise.")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"
    CATEGORY = "adaptive diffusion demo"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": (list(VARIANTS), {
            "default": WHOLE, "tooltip": "The model for the whole noise range, or one expert of the pair "
                                         "(sample the high-noise expert first, then the low-noise one)."})}}

    def load(self, model):
        return (load_flow_model(model),)


class AdaptiveDemoDigitClass:
    DESCRIPTION = "The conditioning for one digit class; 'none' is the null class (use it as negative)."
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "adaptive diffusion demo"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"digit": (CLASS_CHOICES, {"default": "3", "tooltip": "Which digit to draw."})}}

    def encode(self, digit):
        return (class_conditioning(NULL_CLASS if digit == "none" else int(digit)),)


class AdaptiveDemoDigitsLatent:
    DESCRIPTION = "An empty 1×16×16 latent batch for the digits model."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "make"
    CATEGORY = "adaptive diffusion demo"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"batch_size": ("INT", {"default": 1, "min": 1, "max": 256})}}

    def make(self, batch_size):
        return ({"samples": torch.zeros(batch_size, 1, IMAGE_SIZE, IMAGE_SIZE)},)


class AdaptiveDemoDecodeDigits:
    DESCRIPTION = "The digits latent is the image: map it to a ComfyUI IMAGE."
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    CATEGORY = "adaptive diffusion demo"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",)}}

    def decode(self, samples):
        return (to_image(samples["samples"]),)


NODE_CLASS_MAPPINGS = {
    "AdaptiveDemoDigitsModel": AdaptiveDemoDigitsModel,
    "AdaptiveDemoFlowDigitsModel": AdaptiveDemoFlowDigitsModel,
    "AdaptiveDemoDigitClass": AdaptiveDemoDigitClass,
    "AdaptiveDemoDigitsLatent": AdaptiveDemoDigitsLatent,
    "AdaptiveDemoDecodeDigits": AdaptiveDemoDecodeDigits,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AdaptiveDemoDigitsModel": "Demo: Digits Model",
    "AdaptiveDemoFlowDigitsModel": "Demo: Flow Digits Model",
    "AdaptiveDemoDigitClass": "Demo: Digit Class",
    "AdaptiveDemoDigitsLatent": "Demo: Empty Digits Latent",
    "AdaptiveDemoDecodeDigits": "Demo: Digits to Image",
}
