"""The reference model: a small class-conditional ε-prediction UNet on 16×16 handwritten digits.

Built from ComfyUI's own classes (the SD1.5 model config, its UNetModel and the discrete SD noise
schedule), so it loads as a real ComfyUI MODEL and samples through the normal KSampler path.
The "latent" is the image itself: one channel, values in [-1, 1]. Conditioning is one token per
prompt, the one-hot class vector (10 digits + a null class used for the negative / CFG).
"""
from __future__ import annotations

from pathlib import Path

import torch

import comfy.latent_formats
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models

WEIGHTS = Path(__file__).with_name("digits_unet.safetensors")
IMAGE_SIZE = 16
NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES  # the "no class" token used for the negative prompt
TOKEN_DIM = NUM_CLASSES + 1


class DigitsLatentFormat(comfy.latent_formats.LatentFormat):
    latent_channels = 1
    scale_factor = 1.0


class DigitsModelConfig(comfy.supported_models.SD15):
    latent_format = DigitsLatentFormat


UNET_CONFIG = dict(
    image_size=IMAGE_SIZE, in_channels=1, out_channels=1, model_channels=32, num_res_blocks=[1, 1, 1],
    channel_mult=[1, 2, 2], transformer_depth=[0, 1, 1], transformer_depth_output=[0, 0, 1, 1, 1, 1],
    transformer_depth_middle=1, use_spatial_transformer=True, context_dim=TOKEN_DIM, num_heads=2,
    num_head_channels=-1, legacy=False, adm_in_channels=None, use_linear_in_transformer=True,
    use_temporal_resblock=False, use_temporal_attention=False, dtype=torch.float32, use_checkpoint=False)


def build_digits_model(config_class: type = DigitsModelConfig):
    """The ComfyUI BaseModel, weights not initialised (load them, or init_weights for training);
    `config_class` picks the kind (the flow models of flow_model.py use this UNet too)."""
    config = config_class(dict(UNET_CONFIG))
    config.unet_config.update(num_heads=2, num_head_channels=-1)  # SD15's extra config sets 8
    return config.get_model({})


def init_weights(model: torch.nn.Module, seed: int) -> None:
    """PyTorch's default init (ComfyUI's layers skip it), output layer zeroed as in SD."""
    torch.manual_seed(seed)
    for module in model.modules():
        for base in (torch.nn.Conv2d, torch.nn.Linear, torch.nn.GroupNorm, torch.nn.LayerNorm):
            if isinstance(module, base):
                base.reset_parameters(module)
    final = model.diffusion_model.out[-1]
    torch.nn.init.zeros_(final.weight)
    torch.nn.init.zeros_(final.bias)


def load_digits_model(path: Path = WEIGHTS, config_class: type = DigitsModelConfig) -> comfy.model_patcher.ModelPatcher:
    import safetensors.torch
    model = build_digits_model(config_class)
    state = safetensors.torch.load_file(str(path))
    model.diffusion_model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.requires_grad_(False)
    model.eval()
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def class_tokens(labels: torch.Tensor) -> torch.Tensor:
    """[B] class indices (NULL_CLASS for none) → [B, 1, TOKEN_DIM] one-hot context."""
    return torch.nn.functional.one_hot(labels.long(), TOKEN_DIM).float().unsqueeze(1)


def class_conditioning(label: int) -> list:
    """A CONDITIONING list for one class (or NULL_CLASS)."""
    return [[class_tokens(torch.tensor([label])), {}]]


def to_image(latent: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] in [-1, 1] → ComfyUI IMAGE [B, H, W, 3] in [0, 1]."""
    gray = ((latent.float().clamp(-1, 1) + 1) / 2)[:, 0]
    return gray.unsqueeze(-1).repeat(1, 1, 1, 3)
