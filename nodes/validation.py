"""A base for the pack's nodes: ComfyUI 0.3.75 checks a V1 combo's value against its choices when a prompt is
queued, but not a V3 combo's. Here every combo of a node - file lists included, read afresh - gets that
up-front check, so a stale or hand-edited workflow fails validation (custom_validation_failed) like a stock
node would, instead of failing half-way through a run."""
from __future__ import annotations

from comfy_api.latest import io


def check_combo_values(schema: io.Schema, values: dict) -> bool | str:
    for spec in schema.inputs:
        if isinstance(spec, io.Combo.Input) and spec.id in values:
            choices = list(spec.options or [])
            value = values[spec.id]
            if value not in choices:
                shown = choices if len(choices) <= 8 else choices[:8] + ["..."]
                return (f"{spec.id} = {value!r} is not one of the choices here {shown}; if it is a model file, put it "
                        "in its models folder (or pick another) and refresh the node list")
    return True


class ICEditNode(io.ComfyNode):
    @classmethod
    def validate_inputs(cls, **kwargs):
        return check_combo_values(cls.define_schema(), kwargs)
