"""The run's one-line summary (log, the sampler node's strip, Skip Stats): the achieved speed set
against what was asked, in-process on the tiny test model."""
from __future__ import annotations

import importlib
import re

from helpers import adaptive, fixture

STEPS = 20
HEAD = r"AdaptiveDiffusion: computed (\d+)/(\d+) steps, (\d+) skipped: (\d+\.\d\d)x fewer model calls"


def head_matches(trace) -> re.Match:
    """The summary's first part, checked against the trace's own counts."""
    found = re.match(HEAD, trace.summary())
    assert found, trace.summary()
    computed, total, skipped, factor = found.groups()
    assert (int(computed), int(total), int(skipped)) == (trace.computed_steps, trace.total_steps,
                                                          trace.skipped_steps)
    assert factor == f"{trace.call_reduction:.2f}"
    return found


def test_a_speed_run_says_the_asked_and_the_achieved_speed(comfy):
    _, trace = adaptive(comfy, fixture(), steps=STEPS, threshold=0.01, speed="2x")
    found = head_matches(trace)
    assert 0 < trace.skipped_steps < STEPS
    # Within one call of 2x (20 calls asked down to 10): nothing to explain.
    assert trace.model_calls <= STEPS / 2 + 1, trace.mask_bits()
    assert trace.summary() == f"{found.group(0)} (asked 2x)"


def test_a_threshold_run_says_its_delta(comfy):
    _, trace = adaptive(comfy, fixture(), steps=STEPS, threshold=0.3, speed="threshold (δ)")
    found = head_matches(trace)
    assert trace.summary() == f"{found.group(0)} (δ 0.3)"
    assert "asked" not in trace.summary()


def test_threshold_zero_says_skipping_was_off(comfy):
    _, trace = adaptive(comfy, fixture(), steps=STEPS, threshold=0.0, speed="2x")
    assert trace.summary() == (f"AdaptiveDiffusion: computed {STEPS}/{STEPS} steps, 0 skipped: "
                               "1.00x fewer model calls (δ 0: skipping off)")


def test_a_schedule_too_short_for_the_speed_says_so(comfy):
    # 8 steps: 4 of warm-up, the last kept and the normal schedule's long step before it leave 2
    # to skip, where 3x asks for 6.
    _, trace = adaptive(comfy, fixture(), steps=8, threshold=0.01, speed="3x")
    found = head_matches(trace)
    assert trace.summary() == f"{found.group(0)}, less than the asked 3x: room for only 2 of the 6 skips 3x asks for"


def test_refused_skips_are_named_when_the_speed_falls_short(comfy):
    # The tiny model's random weights give no refusals: a 2x run's trace with all but one of its
    # skips refused, and the note a run writes for them.
    _, trace = adaptive(comfy, fixture(), steps=STEPS, threshold=0.01, speed="2x")
    refused = [step for step in trace.steps if not step.computed][1:]
    for step in refused:
        step.computed, step.model_calls, step.cached_calls = True, step.cached_calls, 0
    core = importlib.import_module(type(trace).__module__)
    trace.notes = core.outcome_notes(core.RunOutcome(refused=len(refused), error_tolerance=0.1))
    found = head_matches(trace)
    assert trace.summary() == f"{found.group(0)}, less than the asked 2x: {len(refused)} planned skips refused"


def test_the_long_step_is_named_when_the_speed_falls_short(comfy):
    # dpmpp_2m steps with its past values: on the normal schedule the planned skips before its long
    # last-but-one step are computed (README: 14 of 25 calls at 2x).
    _, trace = adaptive(comfy, fixture(), steps=25, threshold=0.01, speed="2x", sampler_name="dpmpp_2m")
    found = head_matches(trace)
    kept = [note.split(":")[0] for note in trace.notes if "planned skips computed" in note]
    assert kept and trace.model_calls > 25 / 2 + 1, (trace.mask_bits(), trace.notes)
    assert trace.summary() == f"{found.group(0)}, less than the asked 2x: {kept[0]}"
