"""Test-only nodes for the hardening tests: fault injection, another pack's wrapper, leak probes.

The fault injector is driven by files in a folder the test owns, so one graph can be queued
unchanged several times and fail only where the test asked for it: the test "arms" a fault by
creating `interrupt` or `raise` in the folder; the Nth real model call after that consumes the
file, then either waits (bounded) for the host's interrupt flag or raises.
"""
from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import Any, Callable

import comfy.model_management
import comfy.patcher_extension as ext

FAULT_KEY = "adaptive_test_fault"
PAUSED_FILE = "paused"      # written while a model call waits for POST /interrupt
INTERRUPT_WAIT_S = 60.0     # never hang a server: give up and raise after this long


class InjectedFailure(RuntimeError):
    """The error the fault injector raises inside sampling."""


class _FaultState:
    """Counts real model calls while a fault is armed (one per armed fault)."""

    def __init__(self, folder: Path, at_call: int):
        self.folder = folder
        self.at_call = at_call
        self.calls = 0
        self.lock = threading.Lock()

    def armed_fault(self) -> str | None:
        """The fault to fire at this call, consuming its file; None to go on normally."""
        with self.lock:
            armed = [name for name in ("interrupt", "raise") if (self.folder / name).exists()]
            if not armed:
                self.calls = 0
                return None
            self.calls += 1
            if self.calls < self.at_call:
                return None
            self.calls = 0
            (self.folder / armed[0]).unlink()
            return armed[0]


def _wait_for_interrupt(folder: Path) -> None:
    (folder / PAUSED_FILE).write_text("paused\n")
    deadline = time.monotonic() + INTERRUPT_WAIT_S
    while time.monotonic() < deadline:
        # Raises InterruptProcessingException once POST /interrupt has set the host's flag.
        comfy.model_management.throw_exception_if_processing_interrupted()
        time.sleep(0.02)
    raise InjectedFailure(f"no interrupt arrived within {INTERRUPT_WAIT_S}s")


def _fault_wrapper(state: _FaultState) -> Callable:
    def apply_model_wrapper(executor, *args, **kwargs):
        fault = state.armed_fault()
        if fault == "interrupt":
            _wait_for_interrupt(state.folder)
        elif fault == "raise":
            raise InjectedFailure(f"fault injected at real model call {state.at_call}")
        return executor(*args, **kwargs)
    return apply_model_wrapper


class AdaptiveTestFaultInjector:
    """MODEL → MODEL that can stop sampling mid-run on request (see the module docstring)."""
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "adaptive diffusion tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "signal_dir": ("STRING", {"default": ""}),
                             "at_call": ("INT", {"default": 6, "min": 1, "max": 10000})}}

    def patch(self, model, signal_dir, at_call):
        patched = model.clone()
        state = _FaultState(Path(signal_dir), at_call)
        patched.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, FAULT_KEY, _fault_wrapper(state))
        return (patched,)


class ForeignModelFunction:
    """Another pack's model_function_wrapper: scales x̂0 and counts its calls.

    It holds a model reference and a device, as wrappers of real packs do (ControlNet-like
    helpers), so the host's `models()` / `to()` calls on the wrapper matter.
    """

    def __init__(self, scale: float, helper_models: list | None = None):
        self.scale = scale
        self.helper_models = helper_models or []
        self.calls = 0
        self.device = None

    def __deepcopy__(self, memo):  # ModelPatcher.clone deep-copies model_options
        return self

    def __call__(self, apply_model: Callable, args: dict[str, Any]):
        self.calls += 1
        return apply_model(args["input"], args["timestep"], **args["c"]) * self.scale

    def to(self, device):
        self.device = device
        return self

    def models(self) -> list:
        return list(self.helper_models)


class AdaptiveTestForeignWrapper:
    """MODEL → MODEL with a model_function_wrapper set, as another pack would."""
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "adaptive diffusion tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "scale": ("FLOAT", {"default": 0.9, "min": 0.0, "max": 10.0, "step": 0.01})}}

    def patch(self, model, scale):
        patched = model.clone()
        patched.set_model_unet_function_wrapper(ForeignModelFunction(scale))
        return (patched,)


def live_objects(type_name: str) -> int:
    """How many objects of a class with this name are alive (after a full collection)."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj).__name__ == type_name)


class AdaptiveTestLiveRuns:
    """Output node: how many AdaptiveRun objects are still alive in the server after sampling."""
    RETURN_TYPES = ()
    FUNCTION = "report"
    OUTPUT_NODE = True
    CATEGORY = "adaptive diffusion tests"

    @classmethod
    def INPUT_TYPES(cls):
        # The LATENT input only orders this node after the sampler it follows.
        return {"required": {"samples": ("LATENT",), "tag": ("INT", {"default": 0, "min": 0})}}

    def report(self, samples, tag):
        return {"ui": {"adaptive_runs": [live_objects("AdaptiveRun")]}}


NODE_CLASS_MAPPINGS = {
    "AdaptiveTestFaultInjector": AdaptiveTestFaultInjector,
    "AdaptiveTestForeignWrapper": AdaptiveTestForeignWrapper,
    "AdaptiveTestLiveRuns": AdaptiveTestLiveRuns,
}
