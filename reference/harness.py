"""In-process harness: the real ComfyUI, this pack, and the trained digits model (`digits_pack/`),
for the benchmarks (bench/) and the reference model's own check (check_reference_model.py).

A prompt is (noise, class). Methods whose batch rows are independent (the core samplers, and
Adaptive KSampler with per_sample, where each row takes its own decisions exactly as if it ran
alone) run all prompts in one batch; methods that decide per batch (EasyCache, LazyCache) run
prompt by prompt. Real diffusion-network calls are counted below every wrapper.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.inprocess import boot_comfyui, call_node, load_packs

boot_comfyui()

import torch  # noqa: E402

from devtools.comfy_server import PACK_FOLDERS, make_custom_nodes_dir  # noqa: E402

NULL = "none"
SEED = 1000


@dataclass(frozen=True)
class Prompt:
    noise_index: int  # row `noise_index` of seed SEED's noise (ComfyUI's latent batch_index)
    digit: int


def prompts(count: int) -> list[Prompt]:
    """`count` (noise, class) pairs, classes cycling 0-9."""
    return [Prompt(noise_index=i, digit=i % 10) for i in range(count)]


@dataclass
class BatchResult:
    images: torch.Tensor       # [N, 16, 16] in [0, 1]
    model_calls: list[float]   # per prompt: model evaluations that computed this prompt
    seconds: float             # wall time per image
    masks: list[str]
    trace: object = None       # the AdaptiveTrace of an Adaptive KSampler run


class Bench:
    def __init__(self):
        import comfy.utils
        comfy.utils.PROGRESS_BAR_ENABLED = False  # thousands of runs: no progress bars in the log
        torch.set_num_threads(2)
        custom_nodes = make_custom_nodes_dir(Path(tempfile.mkdtemp(prefix="adaptive-bench-")))
        self.nodes = load_packs(custom_nodes, list(PACK_FOLDERS))
        (self.model,) = self.call("AdaptiveDemoDigitsModel")
        (self.negative,) = self.call("AdaptiveDemoDigitClass", digit=NULL)
        from reference.digits_pack.classifier import load_classifier
        self.classifier = load_classifier()

    def call(self, node_type: str, **inputs):
        return call_node(self.nodes, node_type, **inputs)

    def sample(self, batch: list[Prompt], node_type: str = "KSampler", model=None, **settings) -> BatchResult:
        """All prompts in one batch through a sampler node (node inputs in `settings`)."""
        return self.sample_with(batch, lambda **inputs: self.call(node_type, denoise=1.0, **inputs, **settings),
                                model)

    def sample_custom(self, batch: list[Prompt], sampler, sigmas, model=None, cfg: float = 3.0) -> BatchResult:
        """All prompts in one batch through core SamplerCustom with a SAMPLER object (a peer's
        sampler), with the same noise rows and conditioning as `sample`."""
        def run(model, seed, positive, negative, latent_image):
            return self.call("SamplerCustom", model=model, add_noise=True, noise_seed=seed, cfg=cfg,
                             positive=positive, negative=negative, sampler=sampler, sigmas=sigmas,
                             latent_image=latent_image)[:1]
        return self.sample_with(batch, run, model)

    def sample_with(self, batch: list[Prompt], run, model=None) -> BatchResult:
        """`run(model=, seed=, positive=, negative=, latent_image=)` on all prompts in one batch,
        counting the real network calls."""
        from reference.digits_pack.digits_model import class_tokens
        model = model if model is not None else self.model
        positive = [[class_tokens(torch.tensor([p.digit for p in batch])), {}]]
        latent = {"samples": torch.zeros(len(batch), 1, 16, 16), "batch_index": [p.noise_index for p in batch]}
        counter = [0]
        # The UNet's first layer: EasyCache/LazyCache skip inside the UNet's forward, so only a
        # layer below their wrapper counts real network evaluations for every method.
        # (input_blocks[0] is a container the UNet iterates over, so hook the conv inside it.)
        handle = model.model.diffusion_model.input_blocks[0][0].register_forward_pre_hook(
            lambda *a: counter.__setitem__(0, counter[0] + 1))
        try:
            start = time.perf_counter()
            out = run(model=model, seed=SEED, positive=positive, negative=self.negative, latent_image=latent)
            seconds = (time.perf_counter() - start) / len(batch)
        finally:
            handle.remove()
        images = (out[0]["samples"][:, 0].float().clamp(-1, 1) + 1) / 2
        if len(out) > 1:  # an Adaptive trace: each row's calls from its own mask
            trace = out[1]
            # a computed row ran in every real call of its step (a step that reused its first call
            # from the previous step still made its other calls); skipped rows in none
            calls = [float(sum(s.model_calls for s, computed in zip(trace.steps, row) if computed))
                     for row in trace.rows]
            return BatchResult(images, calls, seconds, trace.row_mask_texts(), trace)
        return BatchResult(images, [float(counter[0])] * len(batch), seconds, [""] * len(batch))

    def sample_one_by_one(self, batch: list[Prompt], sample=None, **kwargs) -> BatchResult:
        """Prompt by prompt (batch 1), for methods that decide per batch (EasyCache, LazyCache);
        `sample` is `self.sample` unless given (e.g. `self.sample_custom`)."""
        sample = sample or self.sample
        results = [sample([prompt], **kwargs) for prompt in batch]
        return BatchResult(torch.cat([r.images for r in results]), [r.model_calls[0] for r in results],
                           sum(r.seconds for r in results) / len(results), [r.masks[0] for r in results])

    def with_cache_node(self, node_type: str, reuse_threshold: float):
        """The model patched by core EasyCache or LazyCache (their default start/end)."""
        (model,) = self.call(node_type, model=self.model, reuse_threshold=reuse_threshold,
                             start_percent=0.15, end_percent=0.95, verbose=False)
        return model

    def predicted_digits(self, images: torch.Tensor) -> torch.Tensor:
        from reference.digits_pack.classifier import predict
        return predict(self.classifier, images.unsqueeze(1) * 2 - 1)

