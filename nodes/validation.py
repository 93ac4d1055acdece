"""A base for the pack's nodes: ComfyUI 0.3.75 checks a V1 combo's value against its choices when a prompt is
queued, but not a V3 combo's. Here every combo of a node - file lists included, read afresh - gets that
up-front check, so a stale or hand-edited workflow fails validation (custom_validation_failed) like a stock
node would, instead of failing half-way through a run.

A node with a validate_inputs(**kwargs) loses ComfyUI's own min / max checks (execution.validate_inputs skips
them for every input such a function takes), so the same check does them for the numbers too: without it an
Early Filter `steps` of 500 (its maximum is 200) went through and sampled."""
from __future__ import annotations

from comfy_api.latest import io


def check_input_values(schema: io.Schema, values: dict) -> bool | str:
    for spec in schema.inputs:
        if spec.id not in values:
            continue
        value = values[spec.id]
        if isinstance(spec, io.Combo.Input):
            choices = list(spec.options or [])
            if value not in choices:
                shown = choices if len(choices) <= 8 else choices[:8] + ["..."]
                return (f"{spec.id} = {value!r} is not one of the choices here {shown}; if it is a model file, put it "
                        "in its models folder (or pick another) and refresh the node list")
        elif isinstance(spec, (io.Int.Input, io.Float.Input)) and isinstance(value, (int, float)):
            if spec.min is not None and value < spec.min:
                return f"{spec.id} = {value} is smaller than its minimum {spec.min}"
            if spec.max is not None and value > spec.max:
                return f"{spec.id} = {value} is bigger than its maximum {spec.max}"
    return True


class ICEditNode(io.ComfyNode):
    @classmethod
    def validate_inputs(cls, **kwargs):
        return check_input_values(cls.define_schema(), kwargs)
