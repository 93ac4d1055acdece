"""Custom socket types shared by the pack's nodes."""
from comfy_api.latest import io

# An icedit_core.diptych.DiptychLayout: how a source became a diptych, and how to undo it.
Layout = io.Custom("ICEDIT_LAYOUT")

# An icedit_core.judge.protocol.Judge: compares or scores edits for the Early Filter.
Judge = io.Custom("ICEDIT_JUDGE")

# An icedit_core.region.Region: where a window was cut from a large image and how to blend an edit back.
Region = io.Custom("ICEDIT_REGION")
