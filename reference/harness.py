"""In-process harness: the real ComfyUI, this pack, and the trained digits model (`digits_pack/`),
for the benchmarks (bench/) and the reference model's own check (check_reference_model.py).

A prompt is (noise, class). Methods whose batch rows are independent (the core samplers, and
Adaptive KSampler with per_sample, where each row takes its own decisions exactly as if it ran
alone) run all prompts in one batch; methods that decide per batch (EasyCache, LazyCache) run
prompt by prompt. Real diffusion-network calls are counted below every wrapper.
`Bench(model="flow")` and `Bench(model="experts")` load the flow-matching digits model and the
Wan 2.2-like expert pair instead (`sample_experts` runs the pair's two stages).
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


MODELS = ("eps", "flow", "experts")  # Bench(model=...): the ε model, the flow model, the expert pair


class Bench:
    def __init__(self, model: str = "eps"):
        """`model`: "eps" (the default, the ε-prediction digits model), "flow" (the flow-matching
        model for the whole range) or "experts" (self.model is the high-noise expert and
        self.low_noise_model the low-noise one; sample them with `sample_experts`)."""
        import comfy.utils
        comfy.utils.PROGRESS_BAR_ENABLED = False  # thousands of runs: no progress bars in the log
        torch.set_num_threads(2)
        custom_nodes = make_custom_nodes_dir(Path(tempfile.mkdtemp(prefix="adaptive-bench-")))
        self.nodes = load_packs(custom_nodes, list(PACK_FOLDERS))
        self.model, self.low_noise_model = self.load_model(model)
        (self.negative,) = self.call("AdaptiveDemoDigitClass", digit=NULL)
        from reference.digits_pack.classifier import load_classifier
        self.classifier = load_classifier()

    def load_model(self, model: str) -> tuple:
        """(MODEL, low-noise MODEL or None) for one of MODELS, through the digits pack's nodes."""
        from reference.digits_pack.flow_model import HIGH, LOW, WHOLE
        if model == "eps":
            return self.call("AdaptiveDemoDigitsModel")[0], None
        if model == "flow":
            return self.call("AdaptiveDemoFlowDigitsModel", model=WHOLE)[0], None
        if model == "experts":
            return (self.call("AdaptiveDemoFlowDigitsModel", model=HIGH)[0],
                    self.call("AdaptiveDemoFlowDigitsModel", model=LOW)[0])
        raise ValueError(f"model must be one of {MODELS}, not {model!r}")

    def call(self, node_type: str, **inputs):
        return call_node(self.nodes, node_type, **inputs)

    def expert_switch_step(self, steps: int, scheduler: str, model=None) -> int:
        """The step where the low-noise expert takes over: the first whose σ is below the
        boundary on `model`'s schedule (its own shift, or a ModelSamplingSD3 patch's)."""
        from reference.digits_pack.flow_model import expert_switch_step
        (sigmas,) = self.call("BasicScheduler", model=model or self.model, scheduler=scheduler, steps=steps,
                              denoise=1.0)
        return expert_switch_step(sigmas)

    def sample_experts(self, batch: list[Prompt], steps: int, high=None, low=None, switch_step: int | None = None,
                       **settings) -> BatchResult:
        """Wan 2.2's two stages: KSamplerAdvanced with the high-noise expert up to the switch step
        (returning the leftover noise), then one with the low-noise expert, adding no noise, to the
        end. `settings`: cfg, sampler_name, scheduler; model calls counted on both experts."""
        high, low = high or self.model, low or self.low_noise_model
        if switch_step is None:
            switch_step = self.expert_switch_step(steps, settings["scheduler"], high)

        def stage(model, latent, add_noise: bool, start: int, end: int, leftover: bool, **common):
            return self.call("KSamplerAdvanced", model=model, latent_image=latent, steps=steps,
                             add_noise="enable" if add_noise else "disable", start_at_step=start,
                             end_at_step=end, return_with_leftover_noise="enable" if leftover else "disable",
                             **common, **settings)

        def run(model, seed, positive, negative, latent_image):
            common = dict(noise_seed=seed, positive=positive, negative=negative)
            (latent,) = stage(model, latent_image, True, 0, switch_step, True, **common)
            return stage(low, latent, False, switch_step, steps, False, **common)
        return self.sample_with(batch, run, high, also_count=(low,))

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

    def sample_with(self, batch: list[Prompt], run, model=None, also_count: tuple = ()) -> BatchResult:
        """`run(model=, seed=, positive=, negative=, latent_image=)` on all prompts in one batch,
        counting the real network calls (of `model` and of the models in `also_count`)."""
        from reference.digits_pack.digits_model import class_tokens
        model = model if model is not None else self.model
        positive = [[class_tokens(torch.tensor([p.digit for p in batch])), {}]]
        latent = {"samples": torch.zeros(len(batch), 1, 16, 16), "batch_index": [p.noise_index for p in batch]}
        counter = [0]
        # The UNet's first layer: EasyCache/LazyCache skip inside the UNet's forward, so only a
        # layer below their wrapper counts real network evaluations for every method.
        # (input_blocks[0] is a container the UNet iterates over, so hook the conv inside it.)
        handles = [counted.model.diffusion_model.input_blocks[0][0].register_forward_pre_hook(
            lambda *a: counter.__setitem__(0, counter[0] + 1)) for counted in (model, *also_count)]
        try:
            start = time.perf_counter()
            out = run(model=model, seed=SEED, positive=positive, negative=self.negative, latent_image=latent)
            seconds = (time.perf_counter() - start) / len(batch)
        finally:
            for handle in handles:
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

