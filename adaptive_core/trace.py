"""The per-run record of what was computed and what was skipped (ComfyUI type ADAPTIVE_TRACE)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .config import AdaptiveConfig

COMPUTED_MARK, SKIPPED_MARK = "■", "□"


@dataclass
class StepRecord:
    index: int
    sigma: float
    d: float | None = None          # mean |x_k - x_(k-1)|; None for step 0 and unseen steps
    criterion: float | None = None  # |d_k - 2d_(k-1) + d_(k-2)| / (2 d_(k-1))
    computed: bool = True
    model_calls: int = 0            # real diffusion-model calls made for this step
    cached_calls: int = 0           # calls answered from the noise cache
    model_rows: int = 0             # batch rows sent to the model (cond and uncond rows count)


@dataclass
class AdaptiveTrace:
    config: AdaptiveConfig
    steps: list[StepRecord] = field(default_factory=list)
    label: str = ""
    notes: list[str] = field(default_factory=list)
    rows: list[list[bool]] = field(default_factory=list)  # computed mask of each batch row
    per_sample: bool = False
    # Final steps the run never skipped: keep_last_steps, or at least 2 for samplers that evaluate
    # the model more than once per step (StepClock.protected_tail). None: not from a run.
    kept_last_steps: int | None = None
    inactive: str = ""  # why AdaptiveDiffusion did not act at all in this run ("" when it did)

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    @property
    def computed_steps(self) -> int:
        return sum(step.computed for step in self.steps)

    @property
    def skipped_steps(self) -> int:
        return self.total_steps - self.computed_steps

    @property
    def model_calls(self) -> int:
        return sum(step.model_calls for step in self.steps)

    @property
    def cached_calls(self) -> int:
        return sum(step.cached_calls for step in self.steps)

    @property
    def call_reduction(self) -> float:
        """Model calls a full run would make, divided by the calls this run made."""
        if self.model_calls == 0:
            return 1.0
        return (self.model_calls + self.cached_calls) / self.model_calls

    @property
    def model_rows(self) -> int:
        return sum(step.model_rows for step in self.steps)

    def mask_bits(self) -> str:
        """The mask as "1" computed / "0" skipped, as the browser side reads it."""
        return "".join("1" if s.computed else "0" for s in self.steps)

    def mask_text(self) -> str:
        return "".join(COMPUTED_MARK if s.computed else SKIPPED_MARK for s in self.steps)

    def row_mask_texts(self) -> list[str]:
        return ["".join(COMPUTED_MARK if c else SKIPPED_MARK for c in row) for row in self.rows]

    def summary(self) -> str:
        if self.inactive:
            text = f"AdaptiveDiffusion did not act: {self.inactive} ({self.total_steps} steps computed)"
            return f"{text} [{self.label}]" if self.label else text
        text = (f"AdaptiveDiffusion: computed {self.computed_steps}/{self.total_steps} steps, "
                f"{self.skipped_steps} skipped ({self.call_reduction:.2f}x fewer model calls)")
        return f"{text} [{self.label}]" if self.label else text

    def per_item(self) -> list["AdaptiveTrace"]:
        """One trace per batch item when decisions were per sample, else [self] (for pictures)."""
        if not self.per_sample or len(self.rows) < 2:
            return [self]
        return [AdaptiveTrace(self.config, [replace(step, computed=computed) for step, computed in zip(self.steps, row)],
                              f"{self.label or 'item'} {index}".strip(), list(self.notes), [row], False,
                              self.kept_last_steps)
                for index, row in enumerate(self.rows)]

    def agreement(self, other: "AdaptiveTrace") -> float:
        """Share of steps on which two traces took the same decision."""
        pairs = list(zip(self.steps, other.steps))
        return sum(a.computed == b.computed for a, b in pairs) / len(pairs) if pairs else 1.0

    def to_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        return {
            "label": self.label,
            "total_steps": self.total_steps,
            "computed_steps": self.computed_steps,
            "skipped_steps": self.skipped_steps,
            "model_calls": self.model_calls,
            "cached_calls": self.cached_calls,
            **config,
            "mask": self.mask_text(),
            "per_sample": self.per_sample,
            "inactive": self.inactive,
            "model_rows": self.model_rows,
            "rows": [{"mask": text, "computed_steps": sum(row)}
                     for text, row in zip(self.row_mask_texts(), self.rows)],
            "notes": list(self.notes),
            "steps": [asdict(step) for step in self.steps],
        }
