"""How the runner plans a long clip (issue 19, item 1), without a server: a clip longer than --segment-frames gets
segments and a key that says so; a clip edited whole keeps the key it always had; a workflow that cannot carry its
noise across segments edits the clip whole and says why; the ledger remembers the segments done through failed
lines."""
from __future__ import annotations

import copy
import json

import pytest

from comfyui_icedit.runner import engine, items, prompt as prompts, settings
from icedit_testing import video_clips


def plan(tmp_path, clip, segment_frames, workflow="video"):
    config = engine.RunConfig(output=str(tmp_path / "out"), workflow=workflow, segment_frames=segment_frames)
    catalog = engine.Workflows(workflow)
    (item,) = items.from_edit_pairs([(clip, "make it snowy")], "--video", workflow)
    engine._assign_workflow(item, config, catalog)
    said = []
    (job,) = engine._plan(config, [item], items.Ledger(str(tmp_path)), engine.Summary(), said.append, True,
                          catalog)
    return job, said


def test_a_clip_longer_than_a_segment_is_planned_in_segments_and_a_short_one_keeps_its_key(tmp_path):
    clip = video_clips.write_clip(str(tmp_path / "clip.mp4"), video_clips.translating_frames(5, size=32))
    split, said = plan(tmp_path, clip, 2)
    assert split.segments == ((0, 2), (2, 4), (4, 5)) and split.settings["segment_frames"] == 2
    assert said == ["--video #1: 5 frames, edited in 3 segments of up to 2 frames (--segment-frames), then joined"]
    assert "segment_frames" not in split.inputs  # the runner's own setting, never a workflow input
    whole, _ = plan(tmp_path, clip, 5)
    assert whole.segments == () and "segment_frames" not in whole.settings
    with open(clip, "rb") as handle:  # the key a whole clip always had: its bytes and the same settings
        assert whole.key == items.content_key(handle.read(), whole.settings)
    assert split.key != whole.key
    default, _ = plan(tmp_path, clip, None)
    assert default.segments == () and default.key == whole.key  # 5 frames: below the default segment length


def test_a_workflow_without_video_carry_edits_the_clip_whole_and_says_why(tmp_path):
    workflow = copy.deepcopy(prompts.load_workflow("video"))
    del workflow["extra"]["icedit"]["inputs"]["video_carry"]
    own = tmp_path / "my_video.json"
    own.write_text(json.dumps(workflow))
    clip = video_clips.write_clip(str(tmp_path / "clip.mp4"), video_clips.translating_frames(5, size=32))
    job, said = plan(tmp_path, clip, 2, workflow=str(own))
    assert job.segments == ()
    assert any("5 frames are edited in one piece" in line and "declares no video_carry input" in line
               for line in said), said


def test_the_ledger_remembers_the_segments_done_through_failed_lines_until_the_clip_is_ok(tmp_path):
    job = items.Job(id="c", source="/c.mp4", where="#1", workflow="video", upload_as="video", inputs={},
                    settings={"instruction": "red"}, key="k", segments=((0, 2), (2, 4), (4, 5)))
    ledger = items.Ledger(str(tmp_path))
    outcome = items.Outcome(id="c", worker="w1", status="ok")
    ledger.record_partial(job, outcome, 1, ["0.json", "0.mp4"])
    ledger.record_partial(job, outcome, 2, ["1.json", "1.mp4"])
    ledger.record_failed(job, "the server died")
    reread = items.Ledger(str(tmp_path))
    assert reread.segments_done("c", "k") == 2 and reread.segments_done("c", "other key") == 0
    assert not reread.done("c", "k") and not reread.conflict("c", "k")
    reread.record_ok(job, outcome, ["c_edited.mp4"])
    assert items.Ledger(str(tmp_path)).segments_done("c", "k") == 0 and items.Ledger(str(tmp_path)).done("c", "k")


def test_segment_frames_is_an_option_and_a_manifest_column_and_video_carry_is_the_runners():
    assert settings.BY_NAME["segment_frames"].option == "--segment-frames"
    assert "segment_frames" in items.MANIFEST_COLUMNS and "segment_frames" in settings.RUNNER_SETTINGS
    with pytest.raises(settings.SettingError, match="the runner sets video_carry itself"):
        settings.parse_assignment("video_carry=start")
