"""Saved skip paths: the file format (fuzzed), the Save/Load nodes, and replaying a path."""
from __future__ import annotations

import importlib
import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive_core import AdaptiveConfig, AdaptiveTrace, SkipPathError, StepRecord, parse_skip_path, skip_path_json
from adaptive_core.skip_path import FORMAT, MAX_BYTES
from conftest import count_diffusion_calls, run_node
from helpers import adaptive, fixture


def trace_with(mask: str) -> AdaptiveTrace:
    return AdaptiveTrace(AdaptiveConfig(), [StepRecord(k, 10.0 - k, computed=c == "1") for k, c in enumerate(mask)])


def test_round_trip_keeps_the_mask():
    path = parse_skip_path(skip_path_json(trace_with("1111010011")), "x.json")
    assert path.skip == (False,) * 4 + (True, False, True, True, False, False)
    assert path.mask_text() == "■■■■□■□□■■"


@pytest.mark.parametrize("raw,needle", [
    (b"not json", "not a JSON"),
    (b"[1, 2]", "not a skip path"),
    (json.dumps({"format": "something-else", "format_version": 1}).encode(), "not a skip path"),
    (json.dumps({"format": FORMAT, "format_version": 99, "steps": []}).encode(), "format_version"),
    (json.dumps({"format": FORMAT, "format_version": 1, "steps": []}).encode(), "non-empty"),
    (json.dumps({"format": FORMAT, "format_version": 1, "steps": [{"computed": 1}]}).encode(), "boolean"),
    (json.dumps({"format": FORMAT, "format_version": 1, "steps": ["yes"]}).encode(), "boolean"),
    (json.dumps({"format": FORMAT, "format_version": 1, "total_steps": 3,
                 "steps": [{"computed": True}]}).encode(), "total_steps"),
    (b" " * (MAX_BYTES + 1), "too large"),
])
def test_bad_files_get_clear_errors(raw, needle):
    with pytest.raises(SkipPathError, match=needle):
        parse_skip_path(raw, "bad.json")


def test_length_is_checked_against_the_run():
    path = parse_skip_path(skip_path_json(trace_with("11110")), "p.json")
    path.check_length(5)
    with pytest.raises(SkipPathError, match="5 steps but this sampler runs 6"):
        path.check_length(6)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_arbitrary_bytes_only_ever_raise_skip_path_error(raw):
    try:
        parse_skip_path(raw, "fuzz.json")
    except SkipPathError:
        pass


@settings(max_examples=300, deadline=None)
@given(steps=json_values, version=json_values)
def test_fuzz_structured_json_is_accepted_only_when_valid(steps, version):
    raw = json.dumps({"format": FORMAT, "format_version": version, "steps": steps})
    try:
        path = parse_skip_path(raw, "fuzz.json")
    except SkipPathError:
        return
    assert version == 1 and isinstance(steps, list) and len(path.skip) == len(steps)
    assert all(isinstance(s, dict) and isinstance(s["computed"], bool) for s in steps)


@pytest.fixture
def folders(tmp_path, monkeypatch):
    import folder_paths
    output, input_ = tmp_path / "output", tmp_path / "input"
    output.mkdir()
    input_.mkdir()
    monkeypatch.setattr(folder_paths, "output_directory", str(output))
    monkeypatch.setattr(folder_paths, "input_directory", str(input_))
    return output, input_


def save(comfy, trace, prefix: str = "paths/run") -> str:
    """Save Skip Path; returns the name Load Skip Path lists the file under."""
    ui = comfy.mappings["AdaptiveSkipPathSave"]().save(trace=trace, filename_prefix=prefix)["ui"]
    saved = ui["skip_paths"][0]
    name = f"{saved['subfolder']}/{saved['filename']} [output]" if saved["subfolder"] else f"{saved['filename']} [output]"
    assert ui["text"][0].startswith(name + ":")  # the node says which name to pick
    return name


def listed(comfy) -> list[str]:
    return comfy.mappings["AdaptiveSkipPathLoad"].INPUT_TYPES()["required"]["path"][0]


def save_and_load(comfy, trace, folders) -> object:
    """Save, then load what Save wrote straight from the output folder (no copy)."""
    name = save(comfy, trace)
    assert name in listed(comfy)
    assert comfy.mappings["AdaptiveSkipPathLoad"].VALIDATE_INPUTS(path=name) is True
    (path,) = run_node(comfy, "AdaptiveSkipPathLoad", path=name)
    return path


def test_a_saved_path_replays_to_the_same_mask_and_result(comfy, folders):
    inputs = fixture()
    original, trace = adaptive(comfy, inputs, threshold=0.5)
    path = save_and_load(comfy, trace, folders)
    assert not list(folders[0].rglob("*.tmp"))
    replayed, replay_trace = adaptive(comfy, inputs, threshold=0.0001, skip_path=path)
    assert replay_trace.mask_text() == trace.mask_text()
    assert torch.equal(replayed, original)
    _, other_seed = adaptive(comfy, inputs, seed=99, threshold=0.0001, skip_path=path)
    assert other_seed.mask_text() == trace.mask_text()  # the path, not the criterion, decides


def test_a_path_of_the_wrong_length_fails_before_sampling(comfy, folders):
    inputs = fixture()
    _, trace = adaptive(comfy, inputs, steps=10)
    path = save_and_load(comfy, trace, folders)
    with count_diffusion_calls(inputs["model"]) as counter:
        with pytest.raises(ValueError, match="skip_path"):  # SkipPathError, as the pack loaded it
            adaptive(comfy, inputs, steps=12, skip_path=path)
        (patched,) = run_node(comfy, "AdaptiveDiffusionPatch", model=inputs["model"], threshold=0.01,
                              max_skip_steps=4, warmup_steps=4, keep_last_steps=1, noise_reuse="linear",
                              skip_path=path)
        with pytest.raises(ValueError, match="skip_path"):  # SkipPathError, as the pack loaded it
            run_node(comfy, "KSampler", model=patched, seed=7, steps=12, cfg=4.0, sampler_name="euler",
                     scheduler="normal", positive=inputs["positive"], negative=inputs["negative"],
                     latent_image=inputs["latent_image"], denoise=1.0)
    assert counter.calls == 0


def test_load_rejects_bad_files_at_validation(comfy, folders):
    _, input_ = folders
    (input_ / "broken.json").write_text("{oops")
    message = comfy.mappings["AdaptiveSkipPathLoad"].VALIDATE_INPUTS(path="broken.json")
    assert isinstance(message, str) and "not a JSON" in message
    message = comfy.mappings["AdaptiveSkipPathLoad"].VALIDATE_INPUTS(path="../outside.json")
    assert isinstance(message, str) and "outside the input folder" in message


def test_a_path_copied_to_the_input_folder_loads_under_its_plain_name(comfy, folders):
    output, input_ = folders
    inputs = fixture()
    _, trace = adaptive(comfy, inputs, threshold=0.5)
    name = save(comfy, trace)
    (input_ / "replay.json").write_bytes((output / name.removesuffix(" [output]")).read_bytes())
    assert "replay.json" in listed(comfy)
    assert comfy.mappings["AdaptiveSkipPathLoad"].VALIDATE_INPUTS(path="replay.json") is True
    (path,) = run_node(comfy, "AdaptiveSkipPathLoad", path="replay.json")
    assert path.mask_text() == trace.mask_text()


def test_load_lists_only_skip_paths_at_most_one_folder_deep(comfy, folders):
    output, input_ = folders
    text = skip_path_json(trace_with("11110"))
    (input_ / "top.json").write_text(text)
    (input_ / "workflow.json").write_text(json.dumps({"nodes": [], "links": []}))  # a JSON, not a path
    (input_ / "image.png").write_bytes(b"\x89PNG")
    (input_ / "sub").mkdir()
    (input_ / "sub" / "one_deep.json").write_text(text)
    (input_ / "sub" / "deeper").mkdir()
    (input_ / "sub" / "deeper" / "two_deep.json").write_text(text)  # never walked into
    (input_ / ".hidden").mkdir()
    (input_ / ".hidden" / "h.json").write_text(text)
    (output / "adaptive").mkdir()
    (output / "adaptive" / "saved.json").write_text(text)
    (output / "adaptive" / "other.json").write_text("{}")
    assert listed(comfy) == ["sub/one_deep.json", "top.json", "adaptive/saved.json [output]"]
    # A deeper file is not listed, but a name typed or kept in a workflow still loads.
    assert comfy.mappings["AdaptiveSkipPathLoad"].VALIDATE_INPUTS(path="sub/deeper/two_deep.json") is True


def test_the_listing_reads_a_folder_again_only_when_it_changed(comfy, folders, monkeypatch):
    output, _ = folders
    module = importlib.import_module(comfy.mappings["AdaptiveSkipPathLoad"].__module__)
    (output / "adaptive").mkdir()
    (output / "adaptive" / "a.json").write_text(skip_path_json(trace_with("1111")))
    assert listed(comfy) == ["adaptive/a.json [output]"]
    heads_read = []
    real_read_head = module.read_head
    monkeypatch.setattr(module, "read_head", lambda file: heads_read.append(file) or real_read_head(file))
    for _ in range(3):  # /object_info builds every node's inputs each time
        assert listed(comfy) == ["adaptive/a.json [output]"]
    assert heads_read == []
    name = save(comfy, trace_with("11110"), prefix="adaptive/b")
    assert listed(comfy) == ["adaptive/a.json [output]", name]
    assert len(heads_read) == 1  # only the new file


def test_load_refuses_names_outside_their_folder_and_missing_files(comfy, folders):
    validate = comfy.mappings["AdaptiveSkipPathLoad"].VALIDATE_INPUTS
    message = validate(path="../outside.json [output]")
    assert isinstance(message, str) and "outside the output folder" in message
    message = validate(path="missing.json [output]")
    assert isinstance(message, str) and "not found in the output folder" in message
