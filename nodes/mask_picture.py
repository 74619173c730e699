"""The skip-mask picture of one or more traces (Skip Mask Preview): the drawing.

Host-free (no ComfyUI imports): what it shows of a trace (labels, titles, always-computed steps)
comes from adaptive_core.display; this module lays it out with matplotlib's object API on the Agg
canvas. pyplot is never imported: its global figure state is not thread-safe, and ComfyUI runs
nodes off the main thread. Imported only by Skip Mask Preview, so a missing matplotlib affects
that node alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from ..adaptive_core.display import always_computed_steps, row_labels, shows_delta, title_lines

if TYPE_CHECKING:
    from ..adaptive_core import AdaptiveTrace

# Okabe-Ito palette: distinguishable with every common colour-vision deficiency.
COMPUTED_COLOR = "#0072B2"   # blue
SKIPPED_COLOR = "#E69F00"    # orange
ALWAYS_COLOR = "#000000"     # black bar: warm-up and kept-last steps, computed by rule
DELTA_COLOR = "#D55E00"      # vermillion δ line
LINE_COLOR = "#999999"

WIDTH_IN, DPI = 7.2, 100     # 720 px: fills a ComfyUI preview without shrinking text much
ROW_HEIGHT_IN, LEGEND_HEIGHT_IN = 2.9, 0.45
FONT_SIZE = 11
MAX_TICKS = 9                # step / σ labels per row, so they never overlap at 720 px


@dataclass
class MaskPicture:
    """An RGB picture, per row the pixel (x, y) at the centre of each step's cell, and the pixel
    box (x0, y0, x1, y1) of every piece of text drawn (to check that no labels overlap)."""
    rgb: np.ndarray                               # H x W x 3, uint8
    cell_centers: list[list[tuple[int, int]]]
    text_boxes: list[tuple[float, float, float, float]]


def round_stride(total: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that labels at most MAX_TICKS of `total` steps."""
    magnitude = 1
    while True:
        for base in (1, 2, 5):
            if len(range(0, total, base * magnitude)) <= MAX_TICKS:
                return base * magnitude
        magnitude *= 10


def step_ticks(total: int) -> list[int]:
    """Steps to label: multiples of a round stride, plus the last step when it does not crowd
    the label before it."""
    if total <= 0:
        return []
    stride = round_stride(total)
    ticks = list(range(0, total, stride))
    if len(ticks) < MAX_TICKS and total - 1 - ticks[-1] >= 0.6 * stride:
        ticks.append(total - 1)
    return ticks


def time_axis(trace: "AdaptiveTrace") -> tuple[int, int]:
    """(first step, steps shown): a node that sampled part of a schedule another node shares is
    drawn at its own steps of the whole schedule, so two stages' rows share one time axis."""
    if trace.stage is None:
        return 0, trace.total_steps
    start, schedule_steps = trace.stage
    return start, max(schedule_steps, start + trace.total_steps)


def _draw_strip(ax, trace: "AdaptiveTrace") -> None:
    total = trace.total_steps
    offset, span = time_axis(trace)
    ax.set_xlim(-0.5, max(span, 1) - 0.5)
    ax.set_ylim(-0.45, 1.0)
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if total == 0:
        ax.set_xticks([])
        ax.text(0.5, 0.5, "no steps were sampled", transform=ax.transAxes, ha="center", va="center")
        return
    colors = [COMPUTED_COLOR if step.computed else SKIPPED_COLOR for step in trace.steps]
    # A white edge keeps neighbouring cells apart when many steps make them narrow.
    ax.bar(range(offset, offset + total), 1.0, width=1.0, bottom=0.0, color=colors, edgecolor="white",
           linewidth=0.8 if span <= 60 else 0.0)
    for steps in always_computed_steps(trace):
        if len(steps):
            ax.barh(-0.25, len(steps), left=offset + steps.start - 0.5, height=0.2, color=ALWAYS_COLOR)
    ticks = [t for t in step_ticks(span) if offset <= t < offset + total] if trace.stage else step_ticks(total)
    ax.xaxis.tick_top()
    ax.set_xticks(ticks, [f"σ {trace.steps[k - offset].sigma:.3g}" for k in ticks], fontsize=FONT_SIZE - 2)
    ax.tick_params(axis="x", length=0, pad=2)


def _criterion_points(trace: "AdaptiveTrace") -> tuple[list[int], list[float], list[str]]:
    offset = time_axis(trace)[0]
    points = [(offset + step.index, step.criterion, COMPUTED_COLOR if step.computed else SKIPPED_COLOR)
              for step in trace.steps if step.criterion is not None]
    return [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]


def _draw_criterion(ax, trace: "AdaptiveTrace") -> None:
    total = trace.total_steps
    span = time_axis(trace)[1]
    ax.set_xlim(-0.5, max(span, 1) - 0.5)
    ax.set_xticks(step_ticks(span))
    ax.set_xlabel("step", fontsize=FONT_SIZE - 1, labelpad=1)
    ax.tick_params(labelsize=FONT_SIZE - 2)
    if total == 0:
        ax.set_axis_off()  # the strip above already says nothing was sampled
        return
    xs, values, colors = _criterion_points(trace)
    threshold = trace.config.threshold
    positive = [v for v in values if v > 0] + ([threshold] if shows_delta(trace) else [])
    if not positive:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no criterion values (fewer than 4 steps or a constant latent)",
                transform=ax.transAxes, ha="center", va="center", fontsize=FONT_SIZE - 1)
        return
    # Log scale: the criterion spans decades; a zero value is drawn at the floor.
    floor = min(positive) / 3
    shown = [max(v, floor) for v in values]
    ax.set_yscale("log")
    ax.plot(xs, shown, color=LINE_COLOR, linewidth=1.0, zorder=1)
    ax.scatter(xs, shown, c=colors, s=22, zorder=2, edgecolors="none")
    if shows_delta(trace):
        ax.axhline(threshold, color=DELTA_COLOR, linestyle="--", linewidth=1.4, zorder=0)
    ax.set_ylabel("criterion", fontsize=FONT_SIZE - 1)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)


def _legend_handles(with_delta: bool) -> list:
    handles = [Patch(color=COMPUTED_COLOR, label="computed"),
               Patch(color=SKIPPED_COLOR, label="skipped"),
               Patch(color=ALWAYS_COLOR, label="warm-up / kept last")]
    if with_delta:  # only threshold-mode rows draw δ; a speed ranks the criterion within the run
        handles.append(Line2D([], [], color=DELTA_COLOR, linestyle="--", label="δ (skip below)"))
    return handles


def _cell_centers(ax, trace: "AdaptiveTrace", height_px: int) -> list[tuple[int, int]]:
    offset = time_axis(trace)[0]
    centers = ax.transData.transform([(offset + k, 0.5) for k in range(trace.total_steps)])
    return [(int(round(x)), int(round(height_px - y))) for x, y in centers.reshape(-1, 2)]


def _undrawn_tick_labels(figure: Figure) -> set[int]:
    """Tick labels outside their axis' view limits: they exist but are never drawn."""
    hidden = set()
    for ax in figure.get_axes():
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = (high - low) * 1e-9
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - span <= tick.get_loc() <= high + span:
                    hidden.update((id(tick.label1), id(tick.label2)))
    return hidden


def _text_boxes(figure: Figure, canvas: FigureCanvasAgg) -> list[tuple[float, float, float, float]]:
    renderer = canvas.get_renderer()
    hidden = _undrawn_tick_labels(figure)
    texts = [t for t in figure.findobj(Text)
             if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    return [tuple(float(v) for v in t.get_window_extent(renderer).extents) for t in texts]


def render_mask_picture(traces: Sequence["AdaptiveTrace"], labels: Sequence[str] = ()) -> MaskPicture:
    """One labelled row per trace: the step cells along σ, then the criterion against δ."""
    if not traces:
        raise ValueError("render_mask_picture needs at least one trace")
    height_in = LEGEND_HEIGHT_IN + ROW_HEIGHT_IN * len(traces)
    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    rows = figure.subfigures(len(traces), 1, squeeze=False)[:, 0]
    strips = []
    for row, trace, label in zip(rows, traces, row_labels(traces, labels)):
        row.suptitle(title_lines(trace, label), fontsize=FONT_SIZE, ha="left", x=0.02)
        strip, criterion = row.subplots(2, 1, height_ratios=[1.0, 2.0], sharex=False)
        _draw_strip(strip, trace)
        _draw_criterion(criterion, trace)
        strips.append(strip)
    figure.legend(handles=_legend_handles(any(shows_delta(t) for t in traces)), loc="outside lower center", ncols=4,
                  fontsize=FONT_SIZE - 1, frameon=False)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    centers = [_cell_centers(ax, trace, rgb.shape[0]) for ax, trace in zip(strips, traces)]
    return MaskPicture(rgb, centers, _text_boxes(figure, canvas))

