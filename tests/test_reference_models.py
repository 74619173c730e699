"""The flow-matching digits model and the Wan 2.2-like expert pair (reference/digits_pack/), through
the real ComfyUI: they load through their node, sample as flow models, and draw recognisable digits."""
from __future__ import annotations

import pytest
import torch

from conftest import run_node

DIGITS = list(range(10))
SETTINGS = dict(steps=20, cfg=3.0, sampler_name="euler", scheduler="simple")


@pytest.fixture(scope="module")
def flow(comfy):
    from reference.digits_pack import flow_model
    return flow_model


@pytest.fixture(scope="module")
def models(comfy, flow) -> dict:
    return {variant: run_node(comfy, "AdaptiveDemoFlowDigitsModel", model=variant)[0] for variant in flow.VARIANTS}


@pytest.fixture(scope="module")
def classify():
    from reference.digits_pack.classifier import load_classifier, predict
    net = load_classifier()
    return lambda samples: predict(net, samples)


def digit_prompts(comfy) -> dict:
    """One row per digit 0-9, each with its own noise row; the null class as negative."""
    (negative,) = run_node(comfy, "AdaptiveDemoDigitClass", digit="none")
    tokens = torch.nn.functional.one_hot(torch.tensor(DIGITS), 11).float().unsqueeze(1)
    latent = {"samples": torch.zeros(len(DIGITS), 1, 16, 16), "batch_index": DIGITS}
    return dict(positive=[[tokens, {}]], negative=negative, latent_image=latent)


def test_the_three_load_through_their_node_as_flow_models(comfy, flow, models):
    import comfy.model_base
    import comfy.model_sampling
    for variant, model in models.items():
        sampling = model.get_model_object("model_sampling")
        assert model.model.model_type == comfy.model_base.ModelType.FLOW, variant
        assert isinstance(sampling, comfy.model_sampling.ModelSamplingDiscreteFlow)
        assert isinstance(sampling, comfy.model_sampling.CONST)
        assert sampling.shift == flow.SHIFT == 3.0 and sampling.multiplier == 1000
        assert float(sampling.sigma_max) == pytest.approx(1.0)


def test_the_shift_shapes_the_schedule_and_a_model_sampling_node_patches_it(comfy, flow, models):
    model = models[flow.WHOLE]
    (sigmas,) = run_node(comfy, "BasicScheduler", model=model, scheduler="simple", steps=20, denoise=1.0)
    expected = flow.shifted(torch.linspace(1, 0, 21)[:-1])  # the simple schedule: even in unshifted time
    torch.testing.assert_close(sigmas[:-1], expected, atol=2e-3, rtol=0)
    (patched,) = run_node(comfy, "ModelSamplingSD3", model=model, shift=8.0)
    assert patched.get_model_object("model_sampling").shift == 8.0
    (wan_sigmas,) = run_node(comfy, "BasicScheduler", model=patched, scheduler="simple", steps=20, denoise=1.0)
    assert flow.expert_switch_step(sigmas) in (6, 7)  # step 6 starts at the boundary (float rounding)
    assert flow.expert_switch_step(wan_sigmas) == 11  # steps 0-10 start at σ ≥ 0.889


def test_the_experts_are_different_models(flow, models):
    def weights(variant):
        return models[variant].model.diffusion_model.state_dict()
    high, low, whole = weights(flow.HIGH), weights(flow.LOW), weights(flow.WHOLE)
    assert high.keys() == low.keys() == whole.keys()
    # Cross-attention over the one class token ignores its query, so the norm before it (norm2)
    # gets no gradient and keeps its initial ones and zeros; every trained tensor differs.
    trained = [key for key in high if ".norm2." not in key]
    assert len(trained) > 0.9 * len(high)
    for key in trained:  # different seeds, different σ ranges: no layer is shared
        assert not torch.equal(high[key], low[key]), key
        assert not torch.equal(high[key], whole[key]), key


def test_the_flow_model_draws_recognisable_digits(comfy, flow, models, classify):
    (latent,) = run_node(comfy, "KSampler", model=models[flow.WHOLE], seed=1000, denoise=1.0,
                         **digit_prompts(comfy), **SETTINGS)
    recognised = int((classify(latent["samples"]) == torch.tensor(DIGITS)).sum())
    assert recognised >= 8, recognised


def test_the_expert_pair_in_two_stages_draws_recognisable_digits(comfy, flow, models, classify):
    high, low = models[flow.HIGH], models[flow.LOW]
    (sigmas,) = run_node(comfy, "BasicScheduler", model=high, scheduler="simple", steps=20, denoise=1.0)
    switch = flow.expert_switch_step(sigmas)
    assert float(sigmas[switch - 1]) >= flow.BOUNDARY > float(sigmas[switch])
    prompts = digit_prompts(comfy)
    common = dict(noise_seed=1000, positive=prompts["positive"], negative=prompts["negative"], **SETTINGS)
    (noisy,) = run_node(comfy, "KSamplerAdvanced", model=high, add_noise="enable", latent_image=prompts["latent_image"],
                        start_at_step=0, end_at_step=switch, return_with_leftover_noise="enable", **common)
    (latent,) = run_node(comfy, "KSamplerAdvanced", model=low, add_noise="disable", latent_image=noisy,
                         start_at_step=switch, end_at_step=10000, return_with_leftover_noise="disable", **common)
    recognised = int((classify(latent["samples"]) == torch.tensor(DIGITS)).sum())
    assert recognised >= 8, recognised
