"""Skip Mask Preview picture and Skip Stats text, in-process: pixels and text against the trace."""
from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest
from PIL import Image

from conftest import run_node
from helpers import adaptive, fixture


def pack_module(comfy, name: str):
    """A module of the pack as ComfyUI loaded it."""
    package = comfy.mappings["AdaptiveKSampler"].__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}.{name}")


def core_module(comfy, name: str):
    """A module of the pack's adaptive_core as ComfyUI loaded it."""
    package = comfy.mappings["AdaptiveKSampler"].__module__.rsplit(".", 2)[0]
    return importlib.import_module(f"{package}.adaptive_core.{name}")


@pytest.fixture(scope="module")
def picture(comfy):
    return pack_module(comfy, "mask_picture")


@pytest.fixture(scope="module")
def traces(comfy):
    """Real traces of the Adaptive KSampler: one that skips, one all computed (δ = 0)."""
    inputs = fixture()
    _, skipping = adaptive(comfy, inputs, steps=14, threshold=0.5, seed=3)
    _, all_computed = adaptive(comfy, inputs, steps=14, threshold=0.0, seed=3)
    assert 0 < skipping.skipped_steps < skipping.total_steps, skipping.mask_text()
    assert all_computed.skipped_steps == 0
    return {"skipping": skipping, "all_computed": all_computed}


def synthetic_trace(comfy, pattern: str, **config):
    """A trace with the given computed ("1") / skipped ("0") pattern and decaying σ."""
    trace_type = comfy.hooks.AdaptiveTrace
    record = importlib.import_module(trace_type.__module__).StepRecord
    steps = [record(k, sigma=10.0 / (k + 1), d=0.1, criterion=0.02 * (k % 4 + 1) if k >= 3 else None,
                    computed=mark == "1", model_calls=int(mark == "1"), cached_calls=int(mark == "0"))
             for k, mark in enumerate(pattern)]
    return trace_type(comfy.Config(**config), steps)


def hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])


def expected_color(picture, computed: bool) -> np.ndarray:
    return hex_rgb(picture.COMPUTED_COLOR if computed else picture.SKIPPED_COLOR)


def assert_cells_match(picture, rgb: np.ndarray, centers, trace) -> None:
    assert len(centers) == trace.total_steps
    assert [x for x, _ in centers] == sorted({x for x, _ in centers}), "cells must run left to right"
    for (x, y), step in zip(centers, trace.steps):
        pixel = rgb[y, x].astype(int)
        assert np.abs(pixel - expected_color(picture, step.computed)).max() <= 2, (step.index, pixel)


def colour_runs_along_row(picture, rgb: np.ndarray, y: int) -> str:
    """Scan one pixel row: "1" for computed-colour runs, "0" for skipped-colour runs, in order."""
    marks = []
    for pixel in rgb[y].astype(int):
        for mark, color in (("1", picture.COMPUTED_COLOR), ("0", picture.SKIPPED_COLOR)):
            if np.abs(pixel - hex_rgb(color)).max() <= 2:
                marks.append(mark)
    return "".join(mark for mark, _ in itertools.groupby(marks))


def runs(mask: str) -> str:
    return "".join(mark for mark, _ in itertools.groupby(mask))


def test_picture_size_and_cell_colours_match_a_real_trace(picture, traces):
    trace = traces["skipping"]
    result = picture.render_mask_picture([trace])
    height = round(picture.DPI * (picture.LEGEND_HEIGHT_IN + picture.ROW_HEIGHT_IN))
    assert result.rgb.shape == (height, round(picture.DPI * picture.WIDTH_IN), 3)
    assert result.rgb.dtype == np.uint8
    assert_cells_match(picture, result.rgb, result.cell_centers[0], trace)
    # Independently of the reported centres: the colours along the strip, left to right.
    mask = "".join("1" if s.computed else "0" for s in trace.steps)
    assert colour_runs_along_row(picture, result.rgb, result.cell_centers[0][0][1]) == runs(mask)


def test_stacked_rows_each_match_their_trace(comfy, picture, traces):
    stacked = [traces["skipping"], synthetic_trace(comfy, "1111001011", threshold=0.2),
               synthetic_trace(comfy, "11110000000000000000000000000000000000001")]
    result = picture.render_mask_picture(stacked, ["base", "refiner"])
    one_row = picture.render_mask_picture(stacked[:1])
    assert result.rgb.shape[0] - one_row.rgb.shape[0] == round(2 * picture.ROW_HEIGHT_IN * picture.DPI)
    rows_y = [centers[0][1] for centers in result.cell_centers]
    assert rows_y == sorted(rows_y) and len(set(rows_y)) == 3
    for centers, trace in zip(result.cell_centers, stacked):
        assert_cells_match(picture, result.rgb, centers, trace)
    assert picture.row_labels(stacked, ["base", "refiner"]) == ["base", "refiner", "run 3"]


def test_empty_and_all_computed_traces_render(comfy, picture, traces):
    empty = synthetic_trace(comfy, "")
    result = picture.render_mask_picture([empty, traces["all_computed"]])
    assert result.cell_centers[0] == []
    assert_cells_match(picture, result.rgb, result.cell_centers[1], traces["all_computed"])
    y = result.cell_centers[1][0][1]
    assert colour_runs_along_row(picture, result.rgb, y) == "1"
    assert picture.render_mask_picture([empty]).rgb.shape[1] == round(picture.DPI * picture.WIDTH_IN)


def test_warmup_and_kept_steps_follow_the_settings(comfy, picture):
    trace = synthetic_trace(comfy, "1" * 10, warmup_steps=4, keep_last_steps=2)
    warmup, kept = picture.always_computed_steps(trace)
    assert (list(warmup), list(kept)) == ([0, 1, 2, 3], [8, 9])
    short = synthetic_trace(comfy, "111", warmup_steps=4, keep_last_steps=2)
    assert [list(r) for r in picture.always_computed_steps(short)] == [[0, 1, 2], []]


@pytest.mark.parametrize("sampler,kept", [("heun", [10, 11]), ("dpm_2", [10, 11]), ("euler", [11])])
def test_kept_steps_of_multi_evaluation_samplers_are_their_last_two(comfy, picture, sampler, kept):
    # Samplers that evaluate the model more than once per step always compute their last 2 steps
    # (their rhythm changes there), whatever keep_last_steps says: the picture marks them so.
    _, trace = adaptive(comfy, fixture(), steps=12, sampler_name=sampler, threshold=0.5, keep_last_steps=1)
    assert trace.kept_last_steps == len(kept)
    warmup, kept_steps = picture.always_computed_steps(trace)
    assert list(kept_steps) == kept and all(trace.steps[k].computed for k in kept_steps)
    stacked = [item for item in trace.per_item()]
    assert picture.always_computed_steps(stacked[0])[1] == kept_steps


@pytest.mark.parametrize("total", [1, 2, 9, 10, 12, 30, 50, 51, 99, 1000])
def test_step_labels_are_few_increasing_and_in_range(picture, total):
    ticks = picture.step_ticks(total)
    assert ticks[0] == 0 and ticks == sorted(set(ticks)) and ticks[-1] <= total - 1
    assert len(ticks) <= picture.MAX_TICKS


def overlapping(boxes) -> list:
    return [(a, b) for a, b in itertools.combinations(boxes, 2)
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]


@pytest.mark.parametrize("steps", [1, 12, 45, 200])
def test_no_text_overlaps_and_everything_fits(comfy, picture, steps):
    trace = synthetic_trace(comfy, "1111" + "10" * 200, threshold=0.05)
    trace.steps = trace.steps[:steps]
    result = picture.render_mask_picture([trace, trace], ["a long label for the first run", ""])
    height, width = result.rgb.shape[:2]
    assert len(result.text_boxes) > 10
    assert overlapping(result.text_boxes) == []
    for x0, y0, x1, y1 in result.text_boxes:
        assert 0 <= x0 and x1 <= width and 0 <= y0 and y1 <= height, (x0, y0, x1, y1)


def test_stats_text_matches_the_trace(comfy, traces):
    stats_text = core_module(comfy, "display").stats_text
    for trace in traces.values():
        lines = stats_text(trace).splitlines()
        assert lines[0] == trace.summary()
        assert lines[1] == "".join("■" if s.computed else "□" for s in trace.steps)
        assert lines[1].count("□") == trace.skipped_steps
        assert f"{trace.model_calls} run, {trace.cached_calls} answered from the cache" in lines[2]
    noted = synthetic_trace(comfy, "11")
    noted.notes.append("dpm_fast chooses its own steps; it ran unskipped")
    assert stats_text(noted).splitlines()[-1] == "note: dpm_fast chooses its own steps; it ran unskipped"


def test_skip_stats_node_shows_and_returns_the_same_text(comfy, traces):
    node = comfy.mappings["AdaptiveSkipStats"]()
    output = node.stats(traces["skipping"])
    assert output["ui"]["text"] == [output["result"][0]]
    assert output["result"][0].splitlines()[1] == traces["skipping"].mask_text()


def test_preview_node_saves_the_picture_it_returns(comfy, traces, tmp_path, monkeypatch):
    import folder_paths
    monkeypatch.setattr(folder_paths, "temp_directory", str(tmp_path))
    node = comfy.mappings["AdaptiveSkipMaskPreview"]()
    output = node.preview(traces["skipping"], trace_2=traces["all_computed"], labels="adaptive, full")
    (image,) = output["result"]
    assert image.shape[0] == 1 and image.shape[3] == 3 and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
    (entry,) = output["ui"]["images"]
    assert entry["type"] == "temp" and entry["subfolder"] == ""
    saved = np.asarray(Image.open(tmp_path / entry["filename"]).convert("RGB"))
    assert saved.shape == tuple(image.shape[1:])
    assert np.array_equal(saved, (image[0].numpy() * 255).round().astype(np.uint8))
    # The node is usable from a graph as the executor calls it, too.
    (again,) = run_node(comfy, "AdaptiveSkipMaskPreview", trace=traces["all_computed"])
    assert again.shape[2] == image.shape[2]


def test_a_speed_run_says_its_speed_and_draws_no_delta_line():
    """With a speed, δ decides nothing: the picture and Skip Stats name the speed instead."""
    from adaptive_core import AdaptiveConfig, AdaptiveTrace, StepRecord
    from adaptive_core.display import decision_text, shows_delta, stats_text, title_lines
    steps = [StepRecord(k, 10.0 - k) for k in range(6)]
    speed = AdaptiveTrace(AdaptiveConfig(speed="2x"), steps)
    paper = AdaptiveTrace(AdaptiveConfig(speed="threshold (δ)"), steps)
    assert decision_text(speed) == "speed 2x" and not shows_delta(speed)
    assert decision_text(paper) == "δ 0.01" and shows_delta(paper)
    assert "speed 2x" in title_lines(speed, "") and "· δ" not in title_lines(speed, "")
    assert "settings: speed 2x, δ 0.01" in stats_text(speed)
    off = AdaptiveTrace(AdaptiveConfig(threshold=0.0, speed="2x"), steps)
    assert decision_text(off) == "δ 0 (skipping off)" and not shows_delta(off)


def test_two_stages_of_one_schedule_share_one_time_axis(comfy, picture):
    """Wan 2.2's two experts (or base → refiner) in two Adaptive KSampler (Advanced) nodes: each
    row is drawn at its own steps of the whole schedule, the second to the right of the first."""
    first = synthetic_trace(comfy, "1111010110", threshold=0.01, speed="2x")
    second = synthetic_trace(comfy, "1110101011", threshold=0.01, speed="2x")
    first.stage, second.stage = (0, 20), (10, 20)
    result = picture.render_mask_picture([first, second], ["high noise", "low noise"])
    for centers, trace in zip(result.cell_centers, (first, second)):
        assert_cells_match(picture, result.rgb, centers, trace)
    first_x = [x for x, _ in result.cell_centers[0]]
    second_x = [x for x, _ in result.cell_centers[1]]
    width = (first_x[-1] - first_x[0]) / 9  # one step
    assert first_x[-1] < second_x[0] and abs(second_x[0] - first_x[-1] - width) <= 2
    assert abs(second_x[-1] - first_x[0] - 19 * width) <= 3  # both rows on one 20-step axis
    assert "steps 10-19 of 20" in picture.title_lines(second, "low noise")
    warmup, _ = picture.always_computed_steps(second)
    assert warmup == range(3)  # the second model's own first steps, not warmup_steps
    second.switch_warmup = 2  # a flow model's linear velocity: 2 points of its own
    assert picture.always_computed_steps(second)[0] == range(2)
    assert second.to_dict()["stage"] == {"start": 10, "schedule_steps": 20, "switch_warmup": 2}
