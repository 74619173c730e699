"""Hardening, in-process: concurrent wrapper calls (newer ComfyUI's multi-GPU path) and what the
host expects of a model_function_wrapper that chains another pack's."""
from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest
import torch

import comfy.patcher_extension as comfy_extension
from conftest import run_node
from fixture_pack.hardening import ForeignModelFunction
from fixture_pack.tiny_models import build_tiny_model, conditioning, latent_shape
from helpers import KSAMPLER_DEFAULTS


def split_call(args: dict[str, Any]) -> list[dict[str, Any]]:
    """One batched model call → one call per cond chunk, as a multi-device split would make."""
    count = len(args["cond_or_uncond"])
    rows = args["input"].shape[0]
    options = args["c"].get("transformer_options", {})
    uuids = options.get("uuids") or [None] * count
    calls = []
    for k, (x, t) in enumerate(zip(args["input"].chunk(count), args["timestep"].chunk(count))):
        c = {name: value.chunk(count)[k] if torch.is_tensor(value) and value.shape[0] == rows else value
             for name, value in args["c"].items()}
        c["transformer_options"] = {**options, "cond_or_uncond": [args["cond_or_uncond"][k]],
                                    "uuids": [uuids[k]]}
        calls.append({"input": x, "timestep": t, "c": c, "cond_or_uncond": [args["cond_or_uncond"][k]]})
    return calls


WAIT_S = 30.0  # a chunk never waits longer than this for another (a failure, not a hang)


def reverse(count: int) -> list[int]:
    return list(range(count))[::-1]


def forward(count: int) -> list[int]:
    return list(range(count))


def middle_out(count: int) -> list[int]:
    return sorted(range(count), key=lambda k: abs(2 * k - (count - 1)))


class ChunkDispatch:
    """Outermost model_function_wrapper standing in for multi-GPU dispatch: each call's chunks go
    to `wrapper` one after another (completion_order None), or from worker threads released
    together whose model calls return in the given order of chunks: a run that tied a result to
    the order of calls, or to state shared between calls, would file results under wrong chunks."""

    def __init__(self, wrapper: Callable, completion_order: Callable[[int], list[int]] | None):
        self.wrapper = wrapper
        self.completion_order = completion_order
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()

    def __deepcopy__(self, memo):
        return self

    def apply_after(self, apply_model: Callable, earlier: list[threading.Event]) -> Callable:
        """apply_model that counts threads inside the model and returns only after `earlier`."""
        def apply(*args, **kwargs):
            with self.lock:
                self.active += 1
                self.most_active = max(self.most_active, self.active)
            try:
                out = apply_model(*args, **kwargs)
                for event in earlier:
                    if not event.wait(WAIT_S):
                        raise TimeoutError("a chunk's model call never returned: calls were serialised")
                return out
            finally:
                with self.lock:
                    self.active -= 1
        return apply

    def __call__(self, apply_model: Callable, args: dict[str, Any]) -> torch.Tensor:
        calls = split_call(args)
        if self.completion_order is None:
            return torch.cat([self.wrapper(apply_model, call) for call in calls])
        order = self.completion_order(len(calls))
        returned = [threading.Event() for _ in calls]
        barrier = threading.Barrier(len(calls), timeout=WAIT_S)

        def on_worker(k: int) -> torch.Tensor:
            earlier = [returned[j] for j in order[:order.index(k)]]
            barrier.wait()  # every chunk enters the wrapper at the same moment
            try:
                return self.wrapper(self.apply_after(apply_model, earlier), calls[k])
            finally:
                returned[k].set()

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return torch.cat(list(pool.map(on_worker, range(len(calls)))))


def sample_with_dispatch(comfy, sampler: str, completion_order: Callable[[int], list[int]] | None):
    """Adaptive sampling of a batch of 2 with two positive and two negative conds (4 chunks per
    call), every call dispatched by ChunkDispatch; returns (samples, trace, dispatch)."""
    traces = []
    model = comfy.apply(build_tiny_model("sd15", seed=0), comfy.Config(threshold=0.5), traces.append)
    dispatch = ChunkDispatch(model.model_options["model_function_wrapper"], completion_order)
    model.model_options["model_function_wrapper"] = dispatch
    positive = conditioning("sd15", 1) + conditioning("sd15", 3)
    negative = conditioning("sd15", 2) + conditioning("sd15", 4)
    inputs = {**KSAMPLER_DEFAULTS, "steps": 16, "sampler_name": sampler, "model": model,
              "positive": positive, "negative": negative,
              "latent_image": {"samples": torch.zeros(latent_shape("sd15", 2))}}
    (latent,) = run_node(comfy, "KSampler", **inputs)
    return latent["samples"], traces[-1], dispatch


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_concurrent_wrapper_calls_on_one_run_equal_serial_calls(comfy, sampler):
    serial, serial_trace, _ = sample_with_dispatch(comfy, sampler, completion_order=None)
    assert serial_trace.skipped_steps > 0 and serial_trace.cached_calls > 0
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up, if any
    try:
        runs = [sample_with_dispatch(comfy, sampler, order) for order in (reverse, forward, middle_out)]
    finally:
        sys.setswitchinterval(switch_interval)
    for samples, trace, dispatch in runs:
        assert dispatch.most_active > 1  # the real model really ran on several threads at once
        assert torch.equal(samples, serial)
        assert trace.to_dict() == serial_trace.to_dict()  # same skips, same call counts


def test_chained_wrapper_keeps_its_models_and_device_moves(comfy):
    helper = build_tiny_model("sd15", seed=9)
    foreign = ForeignModelFunction(1.0, helper_models=[helper])
    model = build_tiny_model("sd15", seed=0)
    model.set_model_unet_function_wrapper(foreign)
    assert helper in model.model_patches_models()  # what the host loads with the model

    patched = comfy.apply(model, comfy.Config(threshold=0.5))
    assert helper in patched.model_patches_models()
    device = torch.device("cpu")
    patched.model_patches_to(device)
    assert foreign.device == device
    assert patched.model_options["model_function_wrapper"].inner is foreign


def test_another_step_cache_on_the_model_is_named_in_a_warning(comfy, caplog):
    model = build_tiny_model("sd15", seed=0).clone()

    def passthrough(executor, *args, **kwargs):
        return executor(*args, **kwargs)

    # What core LazyCache leaves on a model: its holder under "easycache" and wrappers under its key.
    model.model_options.setdefault("transformer_options", {})["easycache"] = object()
    model.add_wrapper_with_key(comfy_extension.WrappersMP.OUTER_SAMPLE, "lazycache", passthrough)
    patched = comfy.apply(model, comfy.Config(threshold=0.5))
    inputs = {**KSAMPLER_DEFAULTS, "model": patched, "positive": conditioning("sd15", 1),
              "negative": conditioning("sd15", 2), "latent_image": {"samples": torch.zeros(latent_shape("sd15"))}}
    with caplog.at_level("WARNING", logger="AdaptiveDiffusion"):
        run_node(comfy, "KSampler", **inputs)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("lazycache" in message and "step cache" in message for message in warnings), warnings

    caplog.clear()
    plain = comfy.apply(build_tiny_model("sd15", seed=0), comfy.Config(threshold=0.5))
    with caplog.at_level("WARNING", logger="AdaptiveDiffusion"):
        run_node(comfy, "KSampler", **{**inputs, "model": plain})
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
