"""Host syncs of a real run (issue 13, "ready for a fast GPU").

A host sync (Tensor.item, float(t), bool(t), t.tolist(), int(t)) stalls the CUDA queue until
every queued kernel has run. This counts them during a real Adaptive KSampler run and
attributes each to its caller: the skip decision (decision_state.py's decide/_planned, criterion.py),
the rest of the pack (noise cache, run bookkeeping, hooks), or the host (ComfyUI's samplers). The
pack reads the device through host_read.py: a read there counts for the code that asked for it.
"""
from __future__ import annotations

import contextlib
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from helpers import adaptive, fixture, ksampler

SYNC_METHODS = ("item", "tolist", "__float__", "__bool__", "__int__", "__index__")
DECISION_FUNCTIONS = {"decide", "_planned"}
RUN_RESULTS: dict = {}


def caller(frame) -> str:
    """Who asked for the sync: the code of the frame that called the tensor method (host code
    running inside our wrappers is the host's)."""
    while (frame.f_code.co_name.startswith("<") or Path(frame.f_code.co_filename).name == "host_read.py") \
            and frame.f_back is not None:  # a comprehension, or the pack's one reader
        frame = frame.f_back
    path = Path(frame.f_code.co_filename)
    if path.name == "criterion.py" or (path.name == "decision_state.py" and frame.f_code.co_name in DECISION_FUNCTIONS):
        return "decision"
    if "adaptive_core" in path.parts or (path.parent.name == "nodes" and path.name in ("hooks.py", "live.py")):
        return "pack"
    return "host"


@contextlib.contextmanager
def counting_syncs():
    counts: Counter = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}

    def wrap(name, original):
        def counted(self, *args, **kwargs):
            counts[caller(sys._getframe(1))] += 1
            return original(self, *args, **kwargs)
        return counted

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


@pytest.mark.parametrize("speed", ["threshold (δ)", "2x"])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("steps", [8, 50])
def test_the_pack_adds_a_constant_number_of_host_syncs_per_run(comfy, steps, batch, per_sample, speed):
    inputs = fixture(batch=batch)
    inputs["latent_image"] = {**inputs["latent_image"], "batch_index": list(range(batch))}
    settings = dict(steps=steps, threshold=0.5, max_skip_steps=2, per_sample=per_sample, speed=speed)
    with counting_syncs() as host_only:
        ksampler(comfy, inputs, steps=steps)
    with counting_syncs() as counts:
        _, trace = adaptive(comfy, inputs, **settings)
    assert trace.skipped_steps > 0
    extra = sum(counts.values()) - sum(host_only.values())
    print(f"steps {steps} batch {batch} per_sample {per_sample}: pack {counts['pack']}, decision "
          f"{counts['decision']} ({counts['decision'] / steps:.2f}/step), host {counts['host']} "
          f"(KSampler alone {sum(host_only.values())}); whole run over KSampler: {extra} "
          f"({extra / steps:.2f}/step)")
    # The noise cache, the run's bookkeeping and the hooks: the schedule's tolist at the start
    # and the d history's at the end; nothing per step, per call or per row.
    assert counts["pack"] <= 2, counts
    assert counts["host"] <= sum(host_only.values())  # the host's own syncs are not multiplied
    # The decision: one sync per step at most (its per-row decisions read back at once).
    assert counts["decision"] <= steps, counts
    # The whole run over KSampler: at most 2 per step, whatever the step count, batch, per_sample.
    assert extra <= 2 * steps, (extra, counts, host_only)
    RUN_RESULTS[(steps, batch, per_sample)] = counts["pack"]
    assert len(set(RUN_RESULTS.values())) == 1, RUN_RESULTS  # the same for every size
