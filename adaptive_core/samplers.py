"""What the pack knows of ComfyUI's samplers by name: which ones add noise to the latent every step.

An ODE sampler moves the latent by the model's output alone, so the noise a step implies,
ε = (x − x̂0)/σ, follows a smooth path in σ that a skip can extrapolate. A stochastic sampler adds
new noise to x at every step: ε then jumps with it while the denoised estimate x̂0 still moves
smoothly, so a skip extrapolates x̂0 (noise_cache.Prediction.DENOISED) and the sampler adds its own
noise as always. Two kinds (issue 26): fresh noise drawn at every step (ancestral samplers,
er_sde, sa_solver, seeds, ddpm, lcm), and noise drawn from one Brownian path over σ (the dpmpp
SDE samplers), which plain fewer steps keeps too.
"""
from __future__ import annotations

from enum import Enum


class SamplerNoise(Enum):
    NONE = "none"            # an ODE sampler
    FRESH = "fresh"          # new noise every step
    BROWNIAN = "brownian"    # increments of one Brownian path over σ (BrownianTreeNoiseSampler)


FRESH_NOISE = frozenset({
    "euler_ancestral", "euler_ancestral_RF", "euler_ancestral_cfg_pp", "dpm_2_ancestral", "dpm_2_ancestral_RF",
    "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_RF", "dpmpp_2s_ancestral_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "er_sde", "sa_solver", "sa_solver_pece", "seeds_2", "seeds_3",
    "exp_heun_2_x0_sde", "ddpm", "lcm"})
BROWNIAN_NOISE = frozenset({
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu"})


# Samplers that call the model once in every step (ComfyUI's function names without "sample_"):
# a node starting mid-schedule may take its first callback interval as their rhythm.
ONE_CALL_A_STEP = frozenset({
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "euler_ancestral_RF", "lms", "dpmpp_2m",
    "dpmpp_2m_cfg_pp", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "sa_solver",
    "ddpm", "unipc", "unipc_bh2"})


# Samplers a skip does not help, with the reason the run gives (measured: bench/all_samplers.py).
RUN_UNSKIPPED = {
    "lcm": "lcm restarts every step from x̂0 with new noise (a consistency model's sampler, made for 2-8 "
           "steps); skipping measured worse than plain fewer steps (-0.5 to -2.3 dB at 25 steps)",
}


def unskipped_reason(function_name: str) -> str | None:
    """Why this sampler runs unskipped, or None."""
    return RUN_UNSKIPPED.get(function_name.removeprefix("sample_"))


def sampler_noise(function_name: str) -> SamplerNoise:
    """The kind of a k-diffusion sampler function (`sample_euler_ancestral` or `euler_ancestral`)."""
    name = function_name.removeprefix("sample_")
    if name in FRESH_NOISE:
        return SamplerNoise.FRESH
    if name in BROWNIAN_NOISE:
        return SamplerNoise.BROWNIAN
    return SamplerNoise.NONE
