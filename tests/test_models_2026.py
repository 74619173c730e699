"""The 2026 model families (tiny seeded real architectures, tests/fixture_pack/tiny_2026_models.py):
each runs through Adaptive KSampler, the Advanced node and the MODEL patch with
SamplerCustomAdvanced; threshold 0 is bit-identical to the core sampler; 2x halves the real network
calls; per_sample works; the audio+video families' NestedTensor latents keep their streams."""
from __future__ import annotations

import math

import pytest
import torch

import contextlib
from types import SimpleNamespace

from conftest import run_node
from helpers import ADAPTIVE_DEFAULTS

from fixture_pack import tiny_2026_models as tiny

STEPS = 10
SAMPLING = dict(seed=7, steps=STEPS, cfg=4.0, sampler_name="euler", scheduler="simple", denoise=1.0)
FAST = dict(threshold=0.01, noise_reuse="quadratic", speed="2x")

# Families whose run at 2x the pack fails on: kind -> the exact error (xfail, strict).
KNOWN_FAILURES: dict[str, str] = {}


def family(kind: str):
    """A parametrize entry: skipped where this host lacks the family's class (checked, not caught)."""
    marks = []
    if not tiny.available(kind):
        marks.append(pytest.mark.skip(reason=f"this ComfyUI has no comfy.supported_models.{tiny.FAMILIES[kind][0]}"))
    return pytest.param(kind, marks=marks, id=kind)


KINDS = [family(kind) for kind in tiny.FAMILIES]
AV_KINDS = [family(kind) for kind in tiny.AUDIO_VIDEO]

_MODELS: dict[str, object] = {}


@contextlib.contextmanager
def count_diffusion_calls(model_patcher):
    """conftest's counter of real network calls (below every wrapper), for inputs that are a list
    of streams too: LTXAV's network takes [video, audio] as its x."""
    counter = SimpleNamespace(calls=0, rows=0)

    def hook(module, args, kwargs):
        x = args[0] if args else kwargs["x"]
        counter.calls += 1
        counter.rows += (x[0] if isinstance(x, (list, tuple)) else x).shape[0]

    handle = model_patcher.model.diffusion_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield counter
    finally:
        handle.remove()


def inputs(kind: str, batch: int = 1) -> dict:
    """model/positive/negative/latent_image for a family (models built once per session)."""
    if kind not in _MODELS:
        _MODELS[kind] = tiny.build(kind)
    return dict(model=_MODELS[kind], positive=tiny.conditioning(kind, 1),
                negative=tiny.conditioning(kind, 2), latent_image={"samples": tiny.empty_latent(kind, batch)})


def ksampler(comfy, values: dict, **overrides):
    (latent,) = run_node(comfy, "KSampler", **{**SAMPLING, **values, **overrides})
    return latent["samples"]


def adaptive(comfy, values: dict, **overrides):
    latent, trace = run_node(comfy, "AdaptiveKSampler", **{**SAMPLING, **ADAPTIVE_DEFAULTS, **values, **overrides})
    return latent["samples"], trace


def advanced(comfy, values: dict, adaptive_node: bool, **overrides):
    settings = dict(add_noise="enable", noise_seed=SAMPLING["seed"], steps=STEPS, cfg=SAMPLING["cfg"],
                    sampler_name="euler", scheduler="simple", start_at_step=0, end_at_step=10000,
                    return_with_leftover_noise="disable", **values)
    if adaptive_node:
        latent, trace = run_node(comfy, "AdaptiveKSamplerAdvanced", **{**ADAPTIVE_DEFAULTS, **settings, **overrides})
        return latent["samples"], trace
    (latent,) = run_node(comfy, "KSamplerAdvanced", **{**settings, **overrides})
    return latent["samples"], None


def custom_advanced(comfy, values: dict, model):
    """SamplerCustomAdvanced (CFGGuider, euler, BasicScheduler simple) on `model`."""
    (guider,) = run_node(comfy, "CFGGuider", model=model, positive=values["positive"],
                         negative=values["negative"], cfg=SAMPLING["cfg"])
    (sampler,) = run_node(comfy, "KSamplerSelect", sampler_name="euler")
    (sigmas,) = run_node(comfy, "BasicScheduler", model=model, scheduler="simple", steps=STEPS, denoise=1.0)
    (noise,) = run_node(comfy, "RandomNoise", noise_seed=SAMPLING["seed"])
    out, _ = run_node(comfy, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler,
                      sigmas=sigmas, latent_image=values["latent_image"])
    return out["samples"]


def patched(comfy, model, **overrides):
    """The MODEL patch (as its node applies it) with every run's trace collected."""
    traces: list = []
    config = comfy.Config(**{**ADAPTIVE_DEFAULTS, **overrides})
    return comfy.apply(model, config, traces.append), traces


def same(a, b) -> bool:
    """Bit-identical, for plain and nested (audio+video) latents."""
    if getattr(a, "is_nested", False) or getattr(b, "is_nested", False):
        streams_a, streams_b = a.unbind(), b.unbind()
        return len(streams_a) == len(streams_b) and all(torch.equal(x, y) for x, y in zip(streams_a, streams_b))
    return torch.equal(a, b)


def finite(samples) -> bool:
    streams = samples.unbind() if getattr(samples, "is_nested", False) else [samples]
    return all(torch.isfinite(stream).all() for stream in streams)


def expected_failure(kind: str):
    if kind in KNOWN_FAILURES:
        pytest.xfail(KNOWN_FAILURES[kind])


def assert_half_the_calls(calls: int, trace) -> None:
    """⌈steps/2⌉ ± 1 computed steps, each costing the same real network calls as a full step
    (one where cond and uncond are batched; MiniMax H3 runs them as two), or notes saying why not."""
    target = math.ceil(STEPS / 2)
    assert calls == trace.model_calls and calls % trace.computed_steps == 0, (calls, trace.mask_text())
    assert abs(trace.computed_steps - target) <= 1 or trace.notes, (calls, trace.mask_text(), trace.notes)


def assert_stats(comfy, trace) -> None:
    """Skip Stats tells the same run: the summary, the mask, the call counts."""
    (text,) = run_node(comfy, "AdaptiveSkipStats", trace=trace)
    lines = text.splitlines()
    assert lines[0] == trace.summary()
    assert lines[1] == trace.mask_text() == "".join("■" if s.computed else "□" for s in trace.steps)
    assert f"{trace.model_calls} run, {trace.cached_calls} answered from the cache" in lines[2]
    assert trace.total_steps == STEPS and trace.computed_steps + trace.skipped_steps == STEPS


@pytest.mark.parametrize("kind", KINDS)
def test_threshold_zero_is_bit_identical_to_the_core_samplers(comfy, kind):
    values = inputs(kind)
    reference = ksampler(comfy, values)
    samples, trace = adaptive(comfy, values, threshold=0.0, speed="2x")
    assert same(samples, reference) and trace.skipped_steps == 0 and trace.cached_calls == 0
    reference_advanced, _ = advanced(comfy, values, adaptive_node=False)
    samples_advanced, _ = advanced(comfy, values, adaptive_node=True, threshold=0.0, speed="2x")
    assert same(samples_advanced, reference_advanced)
    exact, _ = patched(comfy, values["model"], threshold=0.0, speed="2x")
    assert same(custom_advanced(comfy, values, exact), custom_advanced(comfy, values, values["model"]))


@pytest.mark.parametrize("kind", KINDS)
def test_2x_halves_the_real_network_calls_in_all_three_nodes(comfy, kind):
    expected_failure(kind)
    values = inputs(kind)
    with count_diffusion_calls(values["model"]) as counter:
        samples, trace = adaptive(comfy, values, **FAST)
    assert finite(samples) and trace.model_calls == counter.calls
    assert trace.skipped_steps > 0, (trace.mask_text(), trace.notes)
    assert_half_the_calls(counter.calls, trace)
    assert all(step.model_calls == 0 for step in trace.steps if not step.computed)
    assert_stats(comfy, trace)

    with count_diffusion_calls(values["model"]) as counter:
        samples_advanced, trace_advanced = advanced(comfy, values, adaptive_node=True, **FAST)
    assert same(samples_advanced, samples) and trace_advanced.mask_text() == trace.mask_text()
    assert counter.calls == trace_advanced.model_calls

    model, traces = patched(comfy, values["model"], **FAST)
    with count_diffusion_calls(values["model"]) as counter:
        custom = custom_advanced(comfy, values, model)
    (patch_trace,) = traces
    assert finite(custom) and counter.calls == patch_trace.model_calls and patch_trace.skipped_steps > 0
    assert_half_the_calls(counter.calls, patch_trace)


@pytest.mark.parametrize("kind", KINDS)
def test_per_sample_decides_per_row_or_says_why_not(comfy, kind):
    expected_failure(kind)
    # The host's MiniMax H3 network takes one row per call (it raises "MiniMax H3 supports batch
    # size 1"; ComfyUI then sends cond and uncond as two calls): one latent row there.
    rows = 1 if kind == "minimax_h3" else 2
    values = inputs(kind, batch=rows)
    with count_diffusion_calls(values["model"]) as counter:
        samples, trace = adaptive(comfy, values, per_sample=True, **FAST)
    assert finite(samples) and counter.rows == trace.model_rows
    if trace.per_sample:
        assert len(trace.row_mask_texts()) == rows
    else:
        assert any("per-sample decisions off" in note for note in trace.notes), trace.notes


def record_callbacks(monkeypatch) -> list:
    """What the sampler hands its step callback (the preview's): (step, x0, x) per call."""
    import latent_preview
    seen: list = []
    monkeypatch.setattr(latent_preview, "prepare_callback",
                        lambda model, steps, x0_output_dict=None: lambda step, x0, x, total: seen.append((step, x0, x)))
    return seen


def stream_shapes(samples) -> list[tuple[int, ...]]:
    return [tuple(stream.shape) for stream in samples.unbind()]


@pytest.mark.parametrize("kind", AV_KINDS)
def test_audio_video_latent_keeps_its_streams_and_is_exact_at_threshold_zero(comfy, kind, monkeypatch):
    """The sampler runs on the packed (flat) latent; the result and the callback's view are nested."""
    values = inputs(kind)
    shapes = stream_shapes(values["latent_image"]["samples"])
    assert len(shapes) == 2  # video, audio
    seen = record_callbacks(monkeypatch)
    reference = ksampler(comfy, values)
    core_views = [(step, x0.unbind(), x.unbind()) for step, x0, x in seen]
    seen.clear()
    samples, trace = adaptive(comfy, values, threshold=0.0, speed="2x")
    assert getattr(samples, "is_nested", False) and stream_shapes(samples) == shapes
    assert same(samples, reference) and trace.skipped_steps == 0
    assert [step for step, _, _ in seen] == list(range(STEPS))
    for (step, x0, x), (core_step, core_x0, core_x) in zip(seen, core_views):
        assert getattr(x0, "is_nested", False) and getattr(x, "is_nested", False)  # the nested view
        assert stream_shapes(x0) == shapes and stream_shapes(x) == shapes
        assert all(torch.equal(a, b) for a, b in zip(x0.unbind(), core_x0))
        assert all(torch.equal(a, b) for a, b in zip(x.unbind(), core_x))


@pytest.mark.parametrize("kind", AV_KINDS)
def test_audio_video_skips_move_both_streams_from_the_cache(comfy, kind, monkeypatch):
    """At 2x a skipped step still advances the video and the audio stream (the cached prediction
    covers the whole packed latent, not one stream), and the callback keeps the nested view."""
    expected_failure(kind)
    values = inputs(kind)
    shapes = stream_shapes(values["latent_image"]["samples"])
    seen = record_callbacks(monkeypatch)
    with count_diffusion_calls(values["model"]) as counter:
        samples, trace = adaptive(comfy, values, **FAST)
    assert getattr(samples, "is_nested", False) and stream_shapes(samples) == shapes and finite(samples)
    assert trace.skipped_steps > 0 and counter.calls == trace.model_calls, (trace.mask_text(), trace.notes)
    assert [step for step, _, _ in seen] == list(range(STEPS))
    assert all(getattr(x, "is_nested", False) and stream_shapes(x) == shapes for _, _, x in seen)
    # euler's callback at step i sees x before step i's update: a skipped step i moved every
    # stream when x at step i + 1 differs from x at step i in each
    ends = [x for _, _, x in seen[1:]] + [samples]
    for index, step in enumerate(trace.steps):
        if not step.computed:
            before, after = seen[index][2].unbind(), ends[index].unbind()
            assert all(not torch.equal(a, b) for a, b in zip(before, after)), index
    full = ksampler(comfy, values)
    assert all(not torch.equal(a, b) for a, b in zip(samples.unbind(), full.unbind()))
