"""The 2026 model families as real ComfyUI model classes with tiny configs and seeded weights.

Same idea as tiny_models.py (test fixtures only, meaningless weights, the host's real code paths),
for the families current in 2026: Wan 2.2 5B (48-channel latent), Qwen-Image, Flux.2, Z-Image
(Lumina 2 code), Chroma, LTX-Video, LTX-2 audio+video (LTXAV), MiniMax H3 audio+video and
HunyuanVideo 1.5. The audio+video families sample a `NestedTensor` latent (video, audio).

A random layer over sinusoidal timestep features makes a random model's prediction jump between
neighbouring σ (its high-frequency features change sign from one step to the next), so the pack's
error estimate would refuse every skip. `smooth_in_sigma` keeps only the timestep embedder's
low-frequency input features, which makes the model as smooth in σ as a trained one.
"""
from __future__ import annotations

import math

import torch

import comfy.model_management
import comfy.model_patcher
import comfy.supported_models

from .tiny_models import seed_weights

# Each kind: the host class it needs (absent on older hosts), its parameterisation.
FAMILIES = {
    "wan22_5b": ("WAN22_T2V", "flow"),
    "qwen_image": ("QwenImage", "flow"),
    "flux2": ("Flux2", "flow"),
    "zimage": ("ZImage", "flow"),
    "chroma": ("Chroma", "flow"),
    "ltxv": ("LTXV", "flow"),
    "ltxav": ("LTXAV", "flow"),
    "minimax_h3": ("MiniMaxH3", "flow"),
    "hunyuan_video15": ("HunyuanVideo15", "flow"),
}
AUDIO_VIDEO = ("ltxav", "minimax_h3")
TEXT_DIM = 32


def available(kind: str) -> bool:
    """Whether this host's comfy.supported_models has the family's class."""
    return hasattr(comfy.supported_models, FAMILIES[kind][0])


def _unet_config(kind: str) -> dict:
    if kind == "wan22_5b":  # the 5B's 48-channel latent in and out (the 14B experts are Wan 2.1 code)
        return dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), text_len=16,
                    in_dim=48, dim=32, ffn_dim=64, freq_dim=32, text_dim=TEXT_DIM, out_dim=48,
                    num_heads=2, num_layers=2, window_size=(-1, -1), qk_norm=True,
                    cross_attn_norm=True, eps=1e-6)
    if kind == "qwen_image":
        return dict(image_model="qwen_image", patch_size=2, in_channels=64, out_channels=16,
                    num_layers=2, attention_head_dim=16, num_attention_heads=2,
                    joint_attention_dim=TEXT_DIM, pooled_projection_dim=TEXT_DIM,
                    axes_dims_rope=(4, 6, 6))
    if kind == "flux2":
        return dict(image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None,
                    context_in_dim=TEXT_DIM, hidden_size=32, mlp_ratio=3.0, num_heads=2, depth=1,
                    depth_single_blocks=1, axes_dim=[4, 4, 4, 4], theta=2000, patch_size=1,
                    qkv_bias=False, guidance_embed=True, txt_ids_dims=[3], global_modulation=True,
                    mlp_silu_act=True, ops_bias=False, default_ref_method="index",
                    ref_index_scale=10.0)
    if kind == "zimage":
        # dim ≥ 256: with z_image_modulation the adaLN layers read min(dim, 256) features of a
        # 256-wide timestep embedding
        return dict(image_model="lumina2", patch_size=2, in_channels=16, dim=256, n_layers=2,
                    n_refiner_layers=1, n_heads=16, n_kv_heads=16, multiple_of=16,
                    ffn_dim_multiplier=8.0 / 3.0, qk_norm=True, cap_feat_dim=TEXT_DIM,
                    axes_dims=[4, 6, 6], axes_lens=[64, 64, 64], rope_theta=256.0,
                    z_image_modulation=True, time_scale=1000.0)
    if kind == "chroma":
        return dict(image_model="chroma", in_channels=64, out_channels=64, context_in_dim=TEXT_DIM,
                    hidden_size=32, mlp_ratio=4.0, num_heads=2, depth=1, depth_single_blocks=1,
                    axes_dim=[4, 6, 6], theta=10000, patch_size=2, qkv_bias=True, in_dim=64,
                    out_dim=32, hidden_dim=32, n_layers=1, txt_ids_dims=[], vec_in_dim=None)
    if kind == "ltxv":
        return dict(image_model="ltxv", in_channels=128, cross_attention_dim=32,
                    attention_head_dim=16, num_attention_heads=2, caption_channels=TEXT_DIM,
                    num_layers=2)
    if kind == "ltxav":
        return dict(image_model="ltxav", in_channels=128, audio_in_channels=128,
                    cross_attention_dim=32, audio_cross_attention_dim=32, attention_head_dim=16,
                    audio_attention_head_dim=16, num_attention_heads=2, audio_num_attention_heads=2,
                    caption_channels=TEXT_DIM, num_layers=1, connector_attention_head_dim=16,
                    connector_num_attention_heads=2, connector_num_layers=1)
    if kind == "minimax_h3":
        # rotary: 6 × rope_inv_freq_len dims per head (t, h, w halves), all of the head here
        return dict(image_model="minimax_h3", hidden_size=48, num_layers=2,
                    token_refiner_num_layers=1, num_attention_heads=2, attention_head_dim=24,
                    ffn_hidden_size=64, latents_dim=24, audio_latents_dim=32, text_dim=TEXT_DIM,
                    timestep_input_dim=256, time_embed_hidden_size=32, time_embed_dim=32,
                    rope_inv_freq_len=4)
    if kind == "hunyuan_video15":
        # 65 input channels as the real 1.5: noise 32 + image latent 32 (zeros for T2V) + mask 1.
        return dict(image_model="hunyuan_video", in_channels=65, out_channels=32, vec_in_dim=None,
                    context_in_dim=TEXT_DIM, hidden_size=32, mlp_ratio=4.0, num_heads=2, depth=1,
                    depth_single_blocks=1, axes_dim=[4, 6, 6], theta=256, patch_size=[1, 1, 1],
                    qkv_bias=True, guidance_embed=False, byt5=False, meanflow=False,
                    use_cond_type_embedding=True, vision_in_dim=16, meanflow_sum=True)
    raise ValueError(f"unknown tiny 2026 model kind {kind!r}; expected one of {tuple(FAMILIES)}")


# The first layer over sinusoidal timestep features in each family (suffixes of module names), and
# Chroma's approximator, whose input starts with a 16-wide timestep sinusoid (then guidance, index).
TIMESTEP_LAYERS = ("timestep_embedder.linear_1", "time_in.in_layer", "time_embedding.0",
                   "t_embedder.mlp.0", "time_embedder.proj_in")
CHROMA_TIMESTEP = ("distilled_guidance_layer.in_proj", 16)


def timestep_layers(model: torch.nn.Module) -> list[tuple[str, int]]:
    """(module name, sinusoid width) of every layer that reads sinusoidal timestep features."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            if name.endswith(TIMESTEP_LAYERS):
                found.append((name, module.in_features))
            elif name.endswith(CHROMA_TIMESTEP[0]):
                found.append((name, CHROMA_TIMESTEP[1]))
    return found


def smooth_in_sigma(model: torch.nn.Module, keep: int = 4) -> list[str]:
    """Zero all but the `keep` lowest-frequency timestep features in every timestep layer.

    Sinusoidal features come as two halves (cos, sin, either order), each from the highest
    frequency (first) to the lowest; only the last `keep` columns of each half stay. Returns the
    layers changed.
    """
    modules = dict(model.named_modules())
    layers = timestep_layers(model)
    with torch.no_grad():
        for name, width in layers:
            weight = modules[name].weight
            half = width // 2
            for start in (0, half):
                weight[:, start:start + half - keep] = 0.0
    return [name for name, _ in layers]


def _params_class(kind: str):
    """The host's parameter dataclass for families built from one (None for the others)."""
    import importlib
    module, name = {"flux2": ("comfy.ldm.flux.model", "FluxParams"),
                    "chroma": ("comfy.ldm.chroma.model", "ChromaParams"),
                    "hunyuan_video15": ("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams")}.get(kind, (None, None))
    return getattr(importlib.import_module(module), name) if module else None


def host_config(kind: str) -> dict:
    """The tiny config, less the fields this host's parameter dataclass does not have yet (0.3.75's
    FluxParams has no txt_ids_dims, its HunyuanVideoParams no meanflow_sum)."""
    import dataclasses
    config = _unet_config(kind)
    params = _params_class(kind)
    if params is None:
        return config
    known = {field.name for field in dataclasses.fields(params)} | {"image_model"}
    return {key: value for key, value in config.items() if key in known}


def build(kind: str, seed: int = 0, scale: float = 0.05, smooth: bool = True) -> comfy.model_patcher.ModelPatcher:
    """A ModelPatcher around the family's real ComfyUI model with seeded random weights.

    Matrices ~ N(0, scale²); 1-D weights (norm gains) ~ 1 + N(0, 0.1²); biases ~ N(0, 0.1²).
    """
    config_class = getattr(comfy.supported_models, FAMILIES[kind][0])
    model = config_class(host_config(kind)).get_model({})
    seed_weights(model, seed, scale)
    with torch.no_grad():
        if kind == "minimax_h3":  # a buffer the checkpoint fills: the rotary frequencies
            inv_freq = model.diffusion_model.rope.inv_freq
            inv_freq.copy_(1.0 / (10000 ** (torch.arange(inv_freq.numel()) / inv_freq.numel())))
    if smooth:
        smooth_in_sigma(model)
    model.eval()
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def empty_latent(kind: str, batch: int = 1) -> torch.Tensor:
    """A zero latent shaped as the family's empty-latent node makes it (small)."""
    import comfy.nested_tensor
    if kind == "wan22_5b":
        return torch.zeros(batch, 48, 2, 8, 8)
    if kind in ("qwen_image", "zimage", "chroma"):
        return torch.zeros(batch, 16, 8, 8)
    if kind == "flux2":
        return torch.zeros(batch, 128, 4, 4)
    if kind == "ltxv":
        return torch.zeros(batch, 128, 2, 4, 4)
    if kind == "hunyuan_video15":
        return torch.zeros(batch, 32, 2, 4, 4)
    if kind == "ltxav":  # video [B,128,T,H,W] + audio [B, 8 channels, T_audio, 16 bins]
        return comfy.nested_tensor.NestedTensor((torch.zeros(batch, 128, 2, 4, 4),
                                                 torch.zeros(batch, 8, 6, 16)))
    if kind == "minimax_h3":  # video [B,24,T,H,W] + audio [B,32,2,T_audio]
        return comfy.nested_tensor.NestedTensor((torch.zeros(batch, 24, 2, 4, 4),
                                                 torch.zeros(batch, 32, 2, 8)))
    raise ValueError(kind)


def conditioning(kind: str, seed: int, tokens: int = 7) -> list:
    """A CONDITIONING list with random text embeddings shaped for `kind`."""
    generator = torch.Generator().manual_seed(seed)
    extra = {}
    if kind == "ltxv":  # its forward requires the text encoder's attention mask
        extra["attention_mask"] = torch.ones(1, tokens, dtype=torch.long)
    if kind in ("hunyuan_video15", "flux2", "chroma"):  # encode_adm reads it (Flux's on 0.3.75) even without a vector input
        extra["pooled_output"] = torch.randn(1, TEXT_DIM, generator=generator)
    return [[torch.randn(1, tokens, TEXT_DIM, generator=generator), extra]]
