"""The per-run record of what was computed and what was skipped (ComfyUI type ADAPTIVE_TRACE)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Sequence

from .config import AdaptiveConfig
from .criterion import criterion_value

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
    # (first step, steps of the whole schedule) when this run sampled part of a schedule that
    # another sampler node shares (two-stage graphs); None when it sampled a schedule alone.
    stage: tuple[int, int] | None = None
    switch_warmup: int | None = None  # with a stage: the steps a node starting mid-schedule computes first

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
                f"{self.skipped_steps} skipped: {self.call_reduction:.2f}x fewer model calls"
                f"{self._asked_text()}")
        return f"{text} [{self.label}]" if self.label else text

    def _asked_text(self) -> str:
        """The summary's end: what the run was asked for, so the user can set it against what it got.

        A speed's calls short of it by more than one are said plainly, since a speed reads as a promise;
        the run's notes (refusals, the long step) and a schedule too short for it say why.
        """
        config = self.config
        if not config.enabled:  # a skip_path still skips at δ 0
            return "" if self.skipped_steps else " (δ 0: skipping off)"
        if config.speed_factor is None:
            return f" (δ {config.threshold:g})"
        full_calls = self.model_calls + self.cached_calls
        # A note's head before its colon says what became of the skips ("18 planned skips refused",
        # "no skips", "room for only 8 of the 10 skips 2x asks for"); the whole note is in the log
        # and in Skip Stats.
        reasons = [head for head in (note.split(":")[0] for note in self.notes) if "skips" in head]
        if self.stage is not None:  # its share of one plan: the speed holds over the whole schedule
            asked = f" (asked {config.speed} over the {self.stage[1]}-step schedule it shares)"
            return asked + (f", less than asked: {'; '.join(reasons)}" if reasons else "")
        if self.model_calls - full_calls / config.speed_factor <= 1:
            return f" (asked {config.speed})"
        why = "; ".join(reasons) or ("see the notes" if self.notes else "")
        return f", less than the asked {config.speed}" + (f": {why}" if why else "")

    def per_item(self) -> list["AdaptiveTrace"]:
        """One trace per batch item when decisions were per sample, else [self] (for pictures)."""
        if not self.per_sample or len(self.rows) < 2:
            return [self]
        return [AdaptiveTrace(self.config, [replace(step, computed=computed) for step, computed in zip(self.steps, row)],
                              f"{self.label or 'item'} {index}".strip(), list(self.notes), [row], False,
                              self.kept_last_steps, stage=self.stage, switch_warmup=self.switch_warmup)
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
            "stage": None if self.stage is None else {"start": self.stage[0], "schedule_steps": self.stage[1],
                                                      "switch_warmup": self.switch_warmup},
            "steps": [asdict(step) for step in self.steps],
        }


# -- filled at a run's end (AdaptiveRun.finish) -------------------------------------------------
WRAPPER_NEVER_RAN = ("its model wrapper never ran (another node replaced the model's "
                     "model_function_wrapper without chaining it): nothing was skipped")


@dataclass(frozen=True)
class CallCount:
    """The calls of one model evaluation, filed under the step it belonged to."""
    step: int
    model_calls: int
    cached_calls: int
    model_rows: int


def record_calls(trace: AdaptiveTrace, counts: Iterable[CallCount]) -> None:
    """Add each evaluation's calls to its step (samplers with their own steps may call past the
    schedule: those go to the last step)."""
    last = trace.total_steps - 1
    for count in counts:
        if last >= 0:
            record = trace.steps[min(count.step, last)]
            record.model_calls += count.model_calls
            record.cached_calls += count.cached_calls
            record.model_rows += count.model_rows


def record_steps(trace: AdaptiveTrace, batch_d: Sequence[float | None], computed: Sequence[Sequence[bool]],
                 rows: int) -> None:
    """Per step: d_k of the batch, the paper's criterion, computed; and each row's mask."""
    for k, record in enumerate(trace.steps):
        record.d = batch_d[k]
        record.criterion = criterion_value(batch_d, k)
        record.computed = any(computed[k])
    trace.rows = [[computed[k][row] for k in range(trace.total_steps)] for row in range(rows)]


@dataclass(frozen=True)
class RunOutcome:
    """What a run's decisions and corrections came to, for the notes at its end."""
    refused: int = 0                  # planned skips (row-steps) the error estimate refused
    replaced: int = 0                 # of those, moved to a later step the estimate allowed
    error_tolerance: float = 0.0      # the bound the estimate was held to
    extrapolated: str = "noise"       # what a skip extrapolates: the noise, or x̂0 (fresh-noise samplers)
    corrected_rows: float | None = None  # row-steps corrected by the step after them (None: no correction)
    kept_for_long_step: int = 0       # planned skips computed because a long step follows
    first_call_reused: int = 0        # steps that skipped only their first call
    batch_rows: int = 1
    per_sample: bool = False


def outcome_notes(outcome: RunOutcome) -> list[str]:
    notes = []
    if outcome.refused:
        moved = f"; {outcome.replaced} of them moved to a later step" if outcome.replaced else ""
        notes.append(f"{outcome.refused} planned skips refused: the predicted {outcome.extrapolated} error was above the tolerance "
                     f"({outcome.error_tolerance:g} of the extrapolated value){moved}")
    if outcome.corrected_rows:
        rows, batch = int(outcome.corrected_rows), max(outcome.batch_rows, 1)
        whole = not outcome.per_sample and rows % batch == 0  # else some rows of a step
        counted = f"{rows // batch} skipped steps were" if whole else f"{rows} skipped row-steps were"
        notes.append(f"{counted} corrected by the computed step after them (steps linear in the sampler's "
                     "recent x̂0 or noise: Euler, DDIM, DPM++ 2M, res_multistep, UniPC, DEIS, iPNDM, LMS, …)")
    if outcome.kept_for_long_step:
        notes.append(f"{outcome.kept_for_long_step} planned skips computed: a much longer step follows them "
                     "and this sampler steps with its past values, which a skip would leave in its memory")
    if outcome.first_call_reused:
        notes.append(f"{outcome.first_call_reused} steps skipped only their first model call (its noise came "
                     "from the previous step's later call)")
    return notes
