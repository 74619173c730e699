"""Code paths that differ between the tested hosts (ComfyUI 0.3.75 and 0.33.0), run for real.

- 0.33.0's `_calc_cond_batch_multigpu` calls our model_function_wrapper from worker threads when
  `multigpu_clones` is in the model options. On this CPU-only machine it runs with two CPU "devices"
  (cpu and cpu:1: distinct dict keys, the same memory) and the host's own MultiGPUThreadPool.
- `ModelPatcherDynamic` (0.33.0, what clone() returns on CUDA): it must not override what the pack uses.
- `_apply_model` hands the diffusion model a shallow copy of transformer_options.
- KSampler's category moved; ours stays where it was.
"""
from __future__ import annotations

import threading

import pytest
import torch

import comfy.model_patcher
import comfy.samplers
import comfy.samplers as comfy_samplers
from helpers import ADAPTIVE_DEFAULTS, KSAMPLER_DEFAULTS, fixture, ksampler

HAS_MULTIGPU = hasattr(comfy.samplers, "_calc_cond_batch_multigpu")


def record_threads(model_patcher):
    """Names of the threads the real diffusion network ran on (a hook below every wrapper)."""
    seen: list[str] = []
    handle = model_patcher.model.diffusion_model.register_forward_pre_hook(
        lambda *a: seen.append(threading.current_thread().name))
    return seen, handle


def sample_on_two_cpu_devices(comfy_ns, model, inputs: dict, **overrides):
    """KSampler with the host's multi-GPU dispatch over two CPU devices and its own thread pool."""
    import comfy.multigpu
    devices = [torch.device("cpu"), torch.device("cpu", 1)]
    model = model.clone()
    model.model_options["multigpu_clones"] = {devices[0]: model, devices[1]: model.clone()}
    pool = comfy.multigpu.MultiGPUThreadPool(devices)
    model.model_options["multigpu_thread_pool"] = pool
    try:
        return ksampler(comfy_ns, {**inputs, "model": model}, **overrides)
    finally:
        pool.shutdown()


@pytest.mark.skipif(not HAS_MULTIGPU, reason="this ComfyUI (0.3.75) has no multi-GPU dispatch")
def test_multigpu_dispatch_calls_the_pack_from_worker_threads_and_matches_one_device(comfy):
    inputs = fixture("sd15", batch=2)
    config = comfy.Config(**{**ADAPTIVE_DEFAULTS, "threshold": 0.5})
    traces: list = []
    patched = comfy.apply(inputs["model"], config, on_trace=traces.append)
    single = ksampler(comfy, {**inputs, "model": patched}, steps=12)
    seen, handle = record_threads(patched)
    try:
        split = sample_on_two_cpu_devices(comfy, patched, inputs, steps=12)
    finally:
        handle.remove()
    one_device, two_devices = traces
    assert len({name for name in seen if name != threading.main_thread().name}) == 2, seen
    assert two_devices.skipped_steps > 0
    assert two_devices.mask_text() == one_device.mask_text()
    assert two_devices.model_calls == len(seen)  # cond and uncond went to different devices
    # One batched call vs one call per chunk: the network rounds differently, nothing more.
    torch.testing.assert_close(split, single, rtol=0, atol=2e-3)


@pytest.mark.skipif(not HAS_MULTIGPU, reason="this ComfyUI (0.3.75) has no multi-GPU dispatch")
def test_multigpu_dispatch_with_threshold_zero_is_bit_identical_to_ksampler(comfy):
    inputs = fixture("sd15", batch=2)
    plain = sample_on_two_cpu_devices(comfy, inputs["model"], inputs, steps=8)
    patched = comfy.apply(inputs["model"], comfy.Config(**{**ADAPTIVE_DEFAULTS, "threshold": 0.0}))
    adaptive = sample_on_two_cpu_devices(comfy, patched, inputs, steps=8)
    assert torch.equal(plain, adaptive)


def test_model_patcher_dynamic_keeps_what_the_pack_uses():
    """ModelPatcherDynamic (0.33.0) needs CUDA to exist; what the pack calls on a MODEL must be
    ModelPatcher's own there, so the CPU tests of ModelPatcher cover it."""
    dynamic = getattr(comfy.model_patcher, "ModelPatcherDynamic", None)
    if dynamic is None:
        assert not hasattr(comfy.samplers, "_calc_cond_batch_multigpu")  # 0.3.75: neither exists
        return
    used = ("clone", "add_wrapper_with_key", "remove_wrappers_with_key", "set_model_unet_function_wrapper",
            "get_wrappers", "model_patches_to", "model_patches_models")
    overridden = [name for name in used if name in vars(dynamic)]
    assert overridden == [], f"ModelPatcherDynamic overrides {overridden}: test the pack against it"
    # On a CPU load device the host hands out the plain ModelPatcher (what every test here runs).
    assert type(dynamic(torch.nn.Linear(1, 1), torch.device("cpu"), torch.device("cpu"))) is comfy.model_patcher.ModelPatcher


def test_the_run_reaches_the_diffusion_model_through_the_transformer_options_copy(comfy):
    """0.33.0's _apply_model passes a shallow copy of transformer_options: the run object (not a
    copy of it) must still be what the diffusion model's options hold."""
    inputs = fixture("sd15")
    traces: list = []
    patched = comfy.apply(inputs["model"], comfy.Config(**{**ADAPTIVE_DEFAULTS, "threshold": 0.5}),
                          on_trace=traces.append)
    runs = []
    handle = patched.model.diffusion_model.register_forward_pre_hook(
        lambda module, args, kwargs: runs.append(kwargs["transformer_options"].get(comfy.hooks.RUN_KEY)),
        with_kwargs=True)
    try:
        ksampler(comfy, {**inputs, "model": patched}, steps=10)
    finally:
        handle.remove()
    assert runs and len({id(run) for run in runs}) == 1 and runs[0] is not None
    assert traces[0].model_calls == len(runs)


def test_our_category_stays_and_the_core_ksampler_is_found_where_the_host_puts_it(comfy):
    import nodes
    ours = comfy.mappings["AdaptiveKSampler"]
    assert ours.CATEGORY == "sampling/adaptive diffusion"
    assert nodes.KSampler.CATEGORY in ("sampling", "model/sampling")
    assert list(ours.INPUT_TYPES()["required"])[:len(nodes.KSampler.INPUT_TYPES()["required"])] == \
        list(nodes.KSampler.INPUT_TYPES()["required"])
    assert KSAMPLER_DEFAULTS["sampler_name"] in comfy_samplers.KSampler.SAMPLERS


@pytest.mark.parametrize("kind, flow", [("sd15", False), ("sdxl", False), ("wan_t2v", True)])
def test_flow_matching_models_are_told_by_their_model_sampling(comfy, kind, flow):
    assert comfy.hooks.is_flow_matching(fixture(kind)["model"]) is flow
