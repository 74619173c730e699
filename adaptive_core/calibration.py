"""δ calibration: bisection on the threshold to a quality target or a model-call budget.

It takes an `evaluate` function from the host that samples at a given δ, so it is pure search
logic and can be tested without ComfyUI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class Calibration:
    threshold: float
    psnr: float
    model_calls: float
    probes: list[tuple[float, float, float]]  # (δ, PSNR, calls) of every probe, in order


def calibrate_threshold(evaluate: Callable[[float], tuple[float, float]], target: str, value: float,
                        iterations: int = 8, upper: float = 0.5) -> Calibration:
    """Bisection on δ ∈ [0, upper]. evaluate(δ) → (mean PSNR vs full steps, mean model calls).

    target "psnr": the largest δ whose PSNR is at least `value` dB;
    target "model_calls": the smallest δ whose calls are at most `value` (δ = upper, the fewest
    calls it tries, when no δ meets the budget).
    Both quantities are monotone in δ in practice, which bisection relies on.
    """
    if target not in ("psnr", "model_calls"):
        raise ValueError(f"target must be psnr or model_calls, got {target!r}")
    probes: dict[float, tuple[float, float]] = {}

    def meets(delta: float) -> bool:
        if delta not in probes:
            probes[delta] = evaluate(delta)
        psnr, calls = probes[delta]
        return psnr >= value if target == "psnr" else calls <= value

    # `good` always meets the target (or is the best available end), `bad` never does.
    good, bad = (0.0, upper) if target == "psnr" else (upper, 0.0)
    if not meets(bad):
        for _ in range(iterations):
            middle = (good + bad) / 2
            if meets(middle):
                good = middle
            else:
                bad = middle
    else:
        good = bad
    meets(good)
    psnr, calls = probes[good]
    return Calibration(good, psnr, calls, [(d, *probes[d]) for d in probes])
