"""What the Skip Mask Preview and Skip Stats show of a trace, as plain data and text.

Host-free and free of any plotting library: nodes/mask_picture.py draws with these, nodes/
visual_nodes.py shows the text, and the oracle search uses the same always-computed steps.
"""
from __future__ import annotations

from typing import Sequence

from .decision import SWITCH_WARMUP
from .trace import AdaptiveTrace


def kept_last_steps(trace: AdaptiveTrace) -> int:
    """Final steps the run always computed: what the run recorded (2 or more for samplers that
    evaluate the model several times per step), else the keep_last_steps setting."""
    return trace.config.keep_last_steps if trace.kept_last_steps is None else trace.kept_last_steps


def always_computed_steps(trace: AdaptiveTrace) -> tuple[range, range]:
    """The warm-up steps and the kept-last steps that are computed whatever the criterion says."""
    total = trace.total_steps
    # a node that starts mid-schedule (a second stage) computes its new model's first steps
    first = (trace.switch_warmup or SWITCH_WARMUP) if trace.stage is not None and trace.stage[0] > 0 \
        and trace.config.speed_factor else trace.config.warmup_steps
    warmup = range(min(first, total))
    kept = range(max(total - kept_last_steps(trace), len(warmup)), total)
    return warmup, kept


def row_labels(traces: Sequence[AdaptiveTrace], labels: Sequence[str] = ()) -> list[str]:
    """A label per row: the given one, else the trace's own, else "run N" when there are several."""
    names = []
    for index, trace in enumerate(traces):
        given = labels[index].strip() if index < len(labels) else ""
        names.append(given or trace.label or (f"run {index + 1}" if len(traces) > 1 else ""))
    return names


def shows_delta(trace: AdaptiveTrace) -> bool:
    """δ decided this run's skips (threshold mode); with a speed it plays no part."""
    return trace.config.threshold > 0 and trace.config.speed_factor is None


def decision_text(trace: AdaptiveTrace) -> str:
    """What decided the skips: the speed asked for, or δ (the paper's rule)."""
    config = trace.config
    if config.threshold == 0:
        return f"δ {config.threshold:g} (skipping off)"
    return f"speed {config.speed}" if config.speed_factor is not None else f"δ {config.threshold:g}"


def title_lines(trace: AdaptiveTrace, label: str) -> str:
    """The two title lines of a picture row: steps computed/skipped, then calls and settings."""
    head = f"{label}: " if label else ""
    if trace.stage is not None:
        head += f"steps {trace.stage[0]}-{trace.stage[0] + trace.total_steps - 1} of {trace.stage[1]}, "
    first = (f"{head}computed {trace.computed_steps}/{trace.total_steps} steps, "
             f"{trace.skipped_steps} skipped")
    second = (f"{trace.model_calls} model calls, {trace.call_reduction:.2f}x fewer · "
              f"noise_reuse {trace.config.noise_reuse} · {decision_text(trace)}")
    return f"{first}\n{second}"


def stats_text(trace: AdaptiveTrace) -> str:
    """Skip Stats: the summary, the mask (■ computed, □ skipped), the call counts, settings, notes."""
    config = trace.config
    lines = [trace.summary(), trace.mask_text() or "(no steps)",
             f"model calls: {trace.model_calls} run, {trace.cached_calls} answered from the cache",
             f"settings: {decision_text(trace)}, δ {config.threshold:g}, max_skip_steps {config.max_skip_steps}, "
             f"warmup_steps {config.warmup_steps}, keep_last_steps {config.keep_last_steps}, "
             f"noise_reuse {config.noise_reuse}"]
    lines += [f"note: {note}" for note in trace.notes]
    return "\n".join(lines)
