"""API-format graphs on the fixture models, for server tests and the demo."""
from __future__ import annotations

ADAPTIVE = dict(threshold=0.5, max_skip_steps=4, warmup_steps=4, keep_last_steps=1, noise_reuse="linear",
                per_sample=False)
SAMPLING = dict(seed=7, steps=12, cfg=4.0, sampler_name="euler", scheduler="normal", denoise=1.0)


def fixture_inputs(kind: str = "sd15", batch: int = 1, size: int = 8) -> dict:
    """Nodes 1-4: model, positive, negative, latent."""
    return {
        "1": {"class_type": "AdaptiveTestTinyModel", "inputs": {"kind": kind, "seed": 0}},
        "2": {"class_type": "AdaptiveTestConditioning", "inputs": {"kind": kind, "seed": 1}},
        "3": {"class_type": "AdaptiveTestConditioning", "inputs": {"kind": kind, "seed": 2}},
        "4": {"class_type": "AdaptiveTestLatent", "inputs": {"kind": kind, "batch_size": batch, "size": size}},
    }


def sampler_inputs(**overrides) -> dict:
    return {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            **SAMPLING, **overrides}


def adaptive_graph(kind: str = "sd15", batch: int = 1, **overrides) -> dict:
    """Adaptive KSampler (node 10) → latent stats (node 11)."""
    graph = fixture_inputs(kind, batch)
    graph["10"] = {"class_type": "AdaptiveKSampler", "inputs": sampler_inputs(**{**ADAPTIVE, **overrides})}
    graph["11"] = {"class_type": "AdaptiveTestLatentStats", "inputs": {"samples": ["10", 0]}}
    return graph


def ksampler_graph(kind: str = "sd15", batch: int = 1, **overrides) -> dict:
    graph = fixture_inputs(kind, batch)
    graph["10"] = {"class_type": "KSampler", "inputs": sampler_inputs(**overrides)}
    graph["11"] = {"class_type": "AdaptiveTestLatentStats", "inputs": {"samples": ["10", 0]}}
    return graph


def patch_custom_sampler_graph(kind: str = "sd15", seed: int = SAMPLING["seed"], **adaptive_overrides) -> dict:
    """AdaptiveDiffusionPatch → CFGGuider → SamplerCustomAdvanced (node 10) → stats (node 11)."""
    graph = fixture_inputs(kind)
    graph.update({
        "5": {"class_type": "AdaptiveDiffusionPatch", "inputs": {"model": ["1", 0], **ADAPTIVE, **adaptive_overrides}},
        "6": {"class_type": "CFGGuider", "inputs": {"model": ["5", 0], "positive": ["2", 0],
                                                    "negative": ["3", 0], "cfg": SAMPLING["cfg"]}},
        "7": {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
        "8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": SAMPLING["sampler_name"]}},
        "9": {"class_type": "BasicScheduler", "inputs": {"model": ["5", 0], "scheduler": SAMPLING["scheduler"],
                                                         "steps": SAMPLING["steps"], "denoise": 1.0}},
        "10": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["7", 0], "guider": ["6", 0],
                                                                 "sampler": ["8", 0], "sigmas": ["9", 0],
                                                                 "latent_image": ["4", 0]}},
        "11": {"class_type": "AdaptiveTestLatentStats", "inputs": {"samples": ["10", 0]}},
    })
    return graph
