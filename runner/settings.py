"""The per-item settings a batch run may give, declared once: their type and bounds, command-line option, manifest
column, defaults on the real and on the smoke-test models, and whether the ledger's key holds them. RunConfig's
fields, the argparse options, the manifest's columns and the key are all derived from SETTINGS; a new setting is
one more entry here (and, for the shipped workflows, one in devtools/build_workflows.py's SETTABLE_INPUTS, which
says which node input carries it). Where a value goes in a workflow is the workflow's own declaration
(extra.icedit.inputs, read by prompt.declared_inputs). Stdlib only.
"""
from __future__ import annotations

import dataclasses
import json

# Frames per segment of a long clip. Measured on the smoke models: 240 frames of 1920x1080 in segments of 16 peak
# at +3.1 GiB above the loaded models, whatever the clip's length (bench/results/video_segments_cpu.json).
SEGMENT_FRAMES = 16
MAX_STEPS = 10000  # KSampler's own limit; --steps and a manifest's steps column both stop here
ALWAYS, WHEN_DECLARED = "always", "when declared"  # Setting.key: when the ledger's key holds the setting
RUNNER = "runner"  # Setting.key of a setting the runner itself uses, never a workflow input (engine.py keys it)


class SettingError(ValueError):
    """A value a setting does not take; the message names the setting and the value (no origin: callers add it)."""


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str  # as the workflow declares it (extra.icedit.inputs), and the manifest column's name
    help: str
    low: int | None = None  # a whole number in [low, high]; None with choices: one of them
    high: int | None = None
    choices: tuple[str, ...] = ()
    flag: str | None = None  # the command-line option; None: --<name with dashes>
    manifest: bool = False  # a manifest may give it per row
    real: object = None  # the default on the real weights; None: the workflow's own value
    smoke: object = None  # the default on the smoke-test models (small, so a smoke run is quick)
    # ALWAYS: the key holds it (None included) for every item; WHEN_DECLARED: only for a workflow that declares it.
    # Which is which keeps the keys of existing ledgers: video_noise and frames_per_batch came with the video
    # workflow, after image keys were already written without them. RUNNER: not a workflow input; the engine puts
    # it in the key where it changes the edit (segment_frames: only for a clip it splits).
    key: str = ALWAYS

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def parse(self, value) -> int | str:
        """The value as this setting takes it (manifest text or JSON value); SettingError if it is not one."""
        if self.choices:
            if value not in self.choices:
                raise SettingError(f"{value!r} is not one of {', '.join(self.choices)}")
            return value
        try:
            number = int(str(value).strip())
        except ValueError:
            raise SettingError(f"{value!r} is not a whole number") from None
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise SettingError(f"{number} is outside [{self.low}, {self.high if self.high is not None else '...'}]")
        return number

    def default(self, smoke: bool):
        return self.smoke if smoke else self.real


SETTINGS = (
    Setting("seed", "the sampling seed (default 42)", 0, 2 ** 64 - 1, manifest=True, real=42, smoke=42),
    Setting("steps", "sampling steps (default 28; 4 on smoke-test models)", 1, MAX_STEPS, manifest=True, real=28,
            smoke=4),
    Setting("panel_width", "diptych panel width (default 512; 64 on smoke-test models)", 64, 4096, real=512,
            smoke=64),
    Setting("candidates", "Early Filter seeds (default 6; 3 on smoke-test models)", 1, 64, smoke=3),
    Setting("early_steps", "Early Filter steps before judging (default 10; 2 on smoke-test models)", 1, MAX_STEPS,
            smoke=2),
    Setting("video_noise", "video: the starting noise per frame (default flow: it moves with the source's motion)",
            choices=("independent", "shared", "flow"), flag="--noise", key=WHEN_DECLARED),
    Setting("frames_per_batch", "video: frames sampled together (default 4; fewer need less GPU memory; the result "
            "is the same up to float rounding)", 1, 4096, key=WHEN_DECLARED),
    Setting("segment_frames", f"video: a clip longer than this is edited this many frames at a time and joined, "
            f"so memory stays bounded whatever its length (default {SEGMENT_FRAMES}); the noise runs on across "
            "segments as in one clip", 1, 100000, manifest=True, real=SEGMENT_FRAMES, smoke=SEGMENT_FRAMES,
            key=RUNNER),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
# What a workflow declares besides the settings: the uploaded file and the instruction come with the item;
# video_carry (ICEdit Video Noise's carry_in) takes the noise state from segment to segment of a split clip.
ITEM_INPUTS = ("image", "video", "instruction", "video_carry")
RUNNER_SETTINGS = frozenset(setting.name for setting in SETTINGS if setting.key == RUNNER)


def add_options(group) -> None:
    """Each setting's command-line option on an argparse group (dest: the setting's name; None when not given)."""
    import argparse

    for setting in SETTINGS:
        if setting.choices:  # argparse's own check and message
            group.add_argument(setting.option, dest=setting.name, choices=setting.choices, help=setting.help)
            continue

        def parse(text, setting=setting):
            try:
                return setting.parse(text)
            except SettingError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
        group.add_argument(setting.option, dest=setting.name, type=parse, help=setting.help)


def parse_assignment(text: str) -> tuple[str, object]:
    """'cfg=2.5' -> ('cfg', 2.5): a value for an input the user's workflow declares (--set). The value is read as
    JSON when it is JSON (2.5, 3, true, "x"), else taken as text (euler)."""
    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise SettingError(f"--set {text!r}: write NAME=VALUE (e.g. --set cfg=2.5)")
    if name == "video_carry":
        raise SettingError(f"--set {text!r}: the runner sets video_carry itself, segment by segment of a clip "
                           "(--segment-frames)")
    if name in BY_NAME or name in ITEM_INPUTS:
        option = BY_NAME[name].option if name in BY_NAME else "--edit/--batch"
        raise SettingError(f"--set {text!r}: {name} has its own option, {option}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def resolve(smoke: bool, run_values: dict, item_values: dict) -> dict:
    """Every setting's value for one item: the item's own (a manifest column), else the run's (its option), else the
    default for these models (None: the workflow keeps its own)."""
    resolved = {}
    for setting in SETTINGS:
        for value in (item_values.get(setting.name), run_values.get(setting.name), setting.default(smoke)):
            if value is not None:
                break
        resolved[setting.name] = value
    return resolved


def key_settings(workflow: str, instruction: str, resolved: dict, declared: set, extra: dict) -> dict:
    """What the ledger's key is made of, besides the uploaded bytes (items.content_key). For the shipped workflows
    this is the very dict the runner has keyed on since the first ledger, so their resumes go on."""
    settings = {"workflow": workflow, "instruction": instruction}
    for setting in SETTINGS:
        if setting.key == ALWAYS or (setting.key == WHEN_DECLARED and setting.name in declared):
            settings[setting.name] = resolved[setting.name]
    settings.update(extra)  # --set values: only what a user's workflow declares, so never a shipped key's names
    return settings
