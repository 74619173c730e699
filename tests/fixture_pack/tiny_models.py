"""Real ComfyUI model classes with tiny configs and seeded weights (test fixtures only).

ComfyUI builds its layers without weight init (it expects a checkpoint), so every parameter is
filled from a seeded generator; the weights are meaningless but the code paths are the real ones:
SD1.5-style UNet (ε), SDXL-style UNet (adm `y` input), Wan 2.1 DiT (flow, 5-D video latents), and
Wan 2.1 image-to-video (extra c_concat channels).
"""
from __future__ import annotations

import torch

import comfy.model_management
import comfy.model_patcher
import comfy.supported_models

KINDS = ("sd15", "sdxl", "wan_t2v", "wan_i2v")
CONTEXT_DIM = 32
POOLED_DIM = 32


def _unet_config(**extra) -> dict:
    config = dict(
        image_size=32, in_channels=4, out_channels=4, model_channels=32, num_res_blocks=[1, 1],
        channel_mult=[1, 2], transformer_depth=[1, 1], transformer_depth_output=[1, 1, 1, 1],
        transformer_depth_middle=1, use_spatial_transformer=True, context_dim=CONTEXT_DIM,
        num_heads=2, num_head_channels=-1, legacy=False, adm_in_channels=None,
        use_linear_in_transformer=False, use_temporal_resblock=False, use_temporal_attention=False,
        dtype=torch.float32, use_checkpoint=False)
    config.update(extra)
    return config


def _wan_config(model_type: str) -> dict:
    return dict(image_model="wan2.1", model_type=model_type, patch_size=(1, 2, 2), text_len=16,
                in_dim=36 if model_type == "i2v" else 16, dim=32, ffn_dim=64, freq_dim=32,
                text_dim=CONTEXT_DIM, out_dim=16, num_heads=2, num_layers=2, window_size=(-1, -1),
                qk_norm=True, cross_attn_norm=True, eps=1e-6)


def _model_config(kind: str):
    if kind == "sd15":
        config = comfy.supported_models.SD15(_unet_config())
    elif kind == "sdxl":
        # SDXL's adm vector: pooled text embedding + 6 size embeddings of 256.
        config = comfy.supported_models.SDXL(_unet_config(adm_in_channels=POOLED_DIM + 6 * 256,
                                                          num_classes="sequential"))
    elif kind == "wan_t2v":
        config = comfy.supported_models.WAN21_T2V(_wan_config("t2v"))
    elif kind == "wan_i2v":
        config = comfy.supported_models.WAN21_I2V(_wan_config("i2v"))
    else:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {KINDS}")
    if kind in ("sd15", "sdxl"):  # the class's extra config would set the real head counts
        config.unet_config.update(num_heads=2, num_head_channels=-1)
    return config


def seed_weights(model: torch.nn.Module, seed: int, scale: float) -> None:
    """Seeded random weights (ComfyUI builds its layers uninitialised and without grad):
    matrices ~ N(0, scale²), 1-D weights (norm gains) ~ 1 + N(0, 0.1²), biases ~ N(0, 0.1²)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() > 1:
                parameter.copy_(noise * scale)
            else:
                parameter.copy_(noise * 0.1 + (1.0 if name.endswith("weight") else 0.0))
            parameter.requires_grad_(False)


def build_tiny_model(kind: str, seed: int = 0, scale: float = 0.05) -> comfy.model_patcher.ModelPatcher:
    """A ModelPatcher around a real ComfyUI model of `kind` with seeded random weights.

    Matrices ~ N(0, scale²); 1-D weights (norm gains) ~ 1 + N(0, 0.1²); biases ~ N(0, 0.1²).
    """
    model = _model_config(kind).get_model({})
    seed_weights(model, seed, scale)
    model.eval()
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def latent_shape(kind: str, batch: int = 1, size: int = 8, frames: int = 3) -> tuple[int, ...]:
    if kind.startswith("wan"):
        return (batch, 16, frames, size, size)
    return (batch, 4, size, size)


def conditioning(kind: str, seed: int, tokens: int = 7) -> list:
    """A CONDITIONING list with random text embeddings shaped for `kind`."""
    generator = torch.Generator().manual_seed(seed)
    extra = {}
    if kind == "sdxl":
        extra["pooled_output"] = torch.randn(1, POOLED_DIM, generator=generator)
    return [[torch.randn(1, tokens, CONTEXT_DIM, generator=generator), extra]]
