"""Which sampler step a model evaluation belongs to.

Samplers evaluate the model one or more times per step (euler 1, heun 2, seeds_3 3, ...), and
neither "a new σ" nor "the first evaluation after a callback" marks a step start for all of them
(heun's second evaluation of step i and the first of step i+1 share σ_(i+1)). What does hold for
every sampler in ComfyUI's list whose steps follow the schedule: the step callback for step k
fires right after the *first* evaluation of step k. So:

* at callback k, the latest evaluation is the first of step k (an anchor);
* evaluations after it belong to step k (slots 1, 2, ...) until the next anchor;
* once the last two callback intervals agree, that interval is the sampler's period p (a run that
  starts mid-schedule trusts its first interval when it is one call: see `quick_start`), and the
  first evaluation of step k + m is predicted at anchor + m·p, which is where the skip decision
  for a step is taken (before its callback exists). Each later callback checks the prediction;
  a mismatch marks the rhythm broken and no step is skipped after it.

Samplers shorten their final steps (heun: 1 evaluation in the last step, heunpp2: 2 then 1), so
with p > 1 the last two steps are always computed (see `protected_tail`).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EvalPosition:
    index: int          # evaluation number in the run
    step: int
    slot: int           # position inside the step: 0 = the step's first evaluation
    predicted_start: bool  # the first evaluation of a step, known before its callback


@dataclass
class StepClock:
    evaluations: int = 0
    anchor_step: int = 0
    anchor_eval: int = 0
    period: int | None = None
    broken: bool = False
    callback_evals: list[int] = field(default_factory=list)  # evaluations seen at each callback
    # A second stage (it starts mid-schedule) decides from its third step: one call between its
    # first two callbacks is taken as the period. Set only for samplers known to call the model
    # once in every step (samplers.ONE_CALL_A_STEP): the decision for step 2 comes before any
    # callback could show otherwise (sa_solver_pece calls once in its first step, twice later).
    quick_start: bool = False
    positions: list[EvalPosition] = field(default_factory=list)

    def next_evaluation(self) -> EvalPosition:
        index = self.evaluations
        self.evaluations += 1
        offset = index - self.anchor_eval
        if self.period and not self.broken and self.callback_evals:
            steps_ahead, slot = divmod(offset, self.period)
            position = EvalPosition(index, self.anchor_step + steps_ahead, slot,
                                    predicted_start=steps_ahead > 0 and slot == 0)
        else:
            position = EvalPosition(index, self.anchor_step, offset, predicted_start=False)
        self.positions.append(position)
        return position

    def on_callback(self, step: int) -> list[EvalPosition]:
        """Anchor step `step` at the latest evaluation; return positions whose step/slot changed."""
        if self.evaluations == 0:
            return []
        first = self.evaluations - 1
        expected = self.positions[first]
        if self.period and not self.broken and (expected.step, expected.slot) != (step, 0):
            self.broken = True
        moved = []
        for position in self.positions[first:]:
            if (position.step, position.slot) != (step, position.index - first):
                position.step, position.slot = step, position.index - first
                moved.append(position)
        self.anchor_step, self.anchor_eval = step, first
        self.callback_evals.append(self.evaluations)
        self._learn_period()
        return moved

    def _learn_period(self) -> None:
        seen = self.callback_evals
        if self.period is None and self.quick_start and len(seen) == 2 and seen[1] - seen[0] == 1:
            self.period = 1
        if self.period is None and len(seen) >= 3:
            last, before = seen[-1] - seen[-2], seen[-2] - seen[-3]
            if last == before and last > 0:
                self.period = last

    def protected_tail(self, keep_last_steps: int) -> int:
        """Final steps never skipped: multi-evaluation samplers change rhythm at the end."""
        return keep_last_steps if self.period == 1 else max(keep_last_steps, 2)
