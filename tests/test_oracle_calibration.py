"""Oracle skip path and δ calibration: the search logic alone, and the nodes in the real host."""
from __future__ import annotations

import torch

from adaptive_core import AdaptiveConfig
from adaptive_core.calibration import calibrate_threshold
from adaptive_core.metrics import relative_error
from adaptive_core.oracle import greedy_oracle
from conftest import run_node
from helpers import KSAMPLER_DEFAULTS, fixture

SEARCH = dict(max_skip_steps=2, warmup_steps=4, keep_last_steps=1, noise_reuse="linear")


def test_greedy_oracle_keeps_harmless_skips_and_respects_cmax():
    # A toy "sampler": every skipped step adds 0.01 to the error, skipping step 7 adds 1.
    def sample(skip):
        return torch.tensor([1.0 + 0.01 * sum(skip) + (1.0 if skip[7] else 0.0)])
    result = greedy_oracle(sample, torch.tensor([1.0]), 12, AdaptiveConfig(max_skip_steps=2), 0.05, 100)
    assert result.skip[4] and result.skip[5] and not result.skip[6]  # Cmax after two
    assert not result.skip[7] and result.skip[8]  # step 7 breaks the tolerance, 8 does not
    assert result.skip[:4] == [False] * 4 and not result.skip[-1]  # warm-up, keep_last
    runs, longest = 0, 0
    for s in result.skip:
        runs = runs + 1 if s else 0
        longest = max(longest, runs)
    assert longest <= 2 and result.error <= 0.05


def test_greedy_oracle_spends_no_rollout_on_steps_the_run_always_computes():
    tried = []

    def sample(skip):
        tried.append(max(k for k, s in enumerate(skip) if s))
        return torch.tensor([1.0])  # every skip is harmless: only the rules limit the path
    config = AdaptiveConfig(max_skip_steps=100, keep_last_steps=1)
    result = greedy_oracle(sample, torch.tensor([1.0]), 12, config, 0.05, 100, kept_last_steps=2)
    assert result.skip == [False] * 4 + [True] * 6 + [False] * 2
    assert max(tried) == 9 and result.rollouts == 6
    default = greedy_oracle(sample, torch.tensor([1.0]), 12, config, 0.05, 100)  # keep_last_steps
    assert default.skip[10] and not default.skip[11]


def test_calibration_finds_the_boundary_of_a_monotone_target():
    evaluate = lambda delta: (40.0 - 100 * delta, 50.0 - 200 * delta)  # noqa: E731
    psnr = calibrate_threshold(evaluate, "psnr", 30.0, iterations=12)
    assert abs(psnr.threshold - 0.1) < 1e-3 and psnr.psnr >= 30.0
    calls = calibrate_threshold(evaluate, "model_calls", 20.0, iterations=12)
    assert abs(calls.threshold - 0.15) < 1e-3 and calls.model_calls <= 20.0
    again = calibrate_threshold(evaluate, "model_calls", 20.0, iterations=12)
    assert again.probes == calls.probes  # deterministic


def core_inputs(inputs: dict) -> dict:
    return {**KSAMPLER_DEFAULTS, **inputs}


def test_oracle_node_meets_its_tolerance_and_cmax(comfy):
    inputs = fixture()
    path, trace = run_node(comfy, "AdaptiveOracleSkipPath", **core_inputs(inputs), **SEARCH,
                           tolerance=0.05, max_rollouts=20)
    assert trace.mask_text() == path.mask_text() and any(path.skip)
    longest = max(len(run) for run in "".join("1" if s else "0" for s in path.skip).split("0"))
    assert longest <= SEARCH["max_skip_steps"]
    reference = run_node(comfy, "KSampler", **core_inputs(inputs))[0]["samples"]
    replay, _ = run_node(comfy, "AdaptiveKSampler", **core_inputs(inputs), threshold=0.01, per_sample=False,
                         **SEARCH, skip_path=path)
    assert relative_error(replay["samples"], reference) <= 0.05


def test_calibrate_node_meets_a_call_budget_deterministically(comfy):
    inputs = fixture()
    values = dict(**core_inputs(inputs), **SEARCH, target="model_calls", target_value=7.0, probe_seeds=1,
                  iterations=5)
    delta, report = run_node(comfy, "AdaptiveCalibrateThreshold", **values)
    _, trace = run_node(comfy, "AdaptiveKSampler", **core_inputs(inputs), threshold=delta, per_sample=False,
                        **SEARCH)
    assert trace.model_calls <= 7 and "δ =" in report
    assert run_node(comfy, "AdaptiveCalibrateThreshold", **values) == (delta, report)


def test_oracle_node_knows_multi_evaluation_samplers_compute_their_last_two_steps(comfy):
    # heun evaluates the model twice per step and once in its last step: the run computes the last
    # 2 steps whatever a path says. Every skip is accepted (huge tolerance), so only that rule and
    # Cmax shape the path; the path must be what the run did.
    inputs = {**core_inputs(fixture()), "sampler_name": "heun", "steps": 10}
    settings = {**SEARCH, "keep_last_steps": 0}
    path, trace = run_node(comfy, "AdaptiveOracleSkipPath", **inputs, **settings, tolerance=1e9, max_rollouts=100)
    assert path.mask_text() == trace.mask_text()
    assert path.skip[-2:] == (False, False) and any(path.skip)
    assert trace.kept_last_steps == 2
    # euler, one evaluation a step: no such rule, the last step can be skipped (11 steps: Cmax 2
    # leaves it a candidate).
    euler_path, euler = run_node(comfy, "AdaptiveOracleSkipPath", **{**inputs, "sampler_name": "euler", "steps": 11},
                                 **settings, tolerance=1e9, max_rollouts=100)
    assert euler.kept_last_steps == 0 and euler_path.skip[-1] and not euler.steps[-1].computed
