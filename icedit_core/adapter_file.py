"""ICEdit adapter checkpoints: reading, validating and describing them. The only module that knows their keys.

The released adapters are diffusers/PEFT LoRA files on the FLUX.1 transformer's unfused diffusers modules,
without alpha tensors (scale 1.0):
- normal LoRA (HF RiverZ/normal-lora): `transformer.<module>.lora_A.weight` [rank, in], `.lora_B.weight` [out, rank];
- MoE LoRA (HF sanaka87/ICEdit-MoE-LoRA): the same for plain modules, and for MoE modules
  `transformer.<module>.lora_A.expert_{e}.weight` [rank, in], `.lora_B.expert_{e}.weight` [out, rank] and a
  bias-free router `transformer.<module>.lora_route.weight` [experts, in]. Expert alpha = rank (scale 1.0).
The same layouts are accepted without the `transformer.` prefix and with PEFT's `base_model.model.` prefix.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch

KEY_PREFIX = "transformer."
TOP_K_METADATA_KEY = "top_k"
ACCEPTED_PREFIXES = ("base_model.model.transformer.", "base_model.model.", "transformer.")

_PLAIN = re.compile(r"^(?P<module>.+)\.lora_(?P<side>[AB])\.weight$")
_EXPERT = re.compile(r"^(?P<module>.+)\.lora_(?P<side>[AB])\.expert_(?P<expert>\d+)\.weight$")
_ROUTER = re.compile(r"^(?P<module>.+)\.lora_route\.weight$")


class AdapterFileError(ValueError):
    """An adapter file that cannot be used; the message names the file, the key and the shapes."""


@dataclass
class LoraModule:
    down: torch.Tensor  # lora_A [rank, in]
    up: torch.Tensor    # lora_B [out, rank]
    scale: float = 1.0  # alpha / rank

    @property
    def in_features(self) -> int:
        return int(self.down.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.up.shape[0])

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])


@dataclass
class MoEModule:
    router: torch.Tensor  # [experts, in]
    downs: torch.Tensor   # [experts, rank, in]
    ups: torch.Tensor     # [experts, out, rank]
    scale: float = 1.0    # alpha / rank

    @property
    def num_experts(self) -> int:
        return int(self.downs.shape[0])

    @property
    def rank(self) -> int:
        return int(self.downs.shape[1])

    @property
    def in_features(self) -> int:
        return int(self.downs.shape[2])

    @property
    def out_features(self) -> int:
        return int(self.ups.shape[1])


@dataclass
class Adapter:
    """What an adapter file holds, by diffusers module name (without prefix)."""

    source: str
    plain: dict[str, LoraModule] = field(default_factory=dict)
    moe: dict[str, MoEModule] = field(default_factory=dict)
    top_k: int | None = None  # from the file's metadata when it says; the released file does not

    def default_top_k(self) -> int:
        return self.top_k or 1

    @property
    def num_experts(self) -> int:
        return next(iter(self.moe.values())).num_experts if self.moe else 0

    def parameter_count(self) -> int:
        plain = sum(m.down.numel() + m.up.numel() for m in self.plain.values())
        moe = sum(m.router.numel() + m.downs.numel() + m.ups.numel() for m in self.moe.values())
        return plain + moe

    def describe(self) -> str:
        name = os.path.basename(self.source)
        plain_ranks = sorted({m.rank for m in self.plain.values()})
        text = f"{name}: {len(self.plain)} plain LoRA modules (rank {'/'.join(map(str, plain_ranks)) or '-'})"
        if self.moe:
            first = next(iter(self.moe.values()))
            text += (f", {len(self.moe)} MoE modules ({first.num_experts} experts x rank {first.rank}, "
                     f"token-routed)")
        else:
            text += ", no MoE modules (a normal LoRA)"
        return text + f"; {self.parameter_count() / 1e6:.1f} M parameters"


def _strip_prefix(key: str) -> str:
    for prefix in ACCEPTED_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _shape(tensor) -> str:
    return "x".join(map(str, tensor.shape))


def parse_state_dict(state_dict: dict[str, torch.Tensor], source: str = "<state dict>") -> Adapter:
    """Group and validate the tensors of an ICEdit adapter. Raises AdapterFileError naming key and shapes."""
    plain_parts: dict[str, dict[str, tuple[str, torch.Tensor]]] = {}
    expert_parts: dict[str, dict[tuple[str, int], tuple[str, torch.Tensor]]] = {}
    routers: dict[str, tuple[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in state_dict.items():
        name = _strip_prefix(key)
        if match := _EXPERT.match(name):
            slot = (match["side"], int(match["expert"]))
            expert_parts.setdefault(match["module"], {})[slot] = (key, tensor)
        elif match := _ROUTER.match(name):
            routers[match["module"]] = (key, tensor)
        elif match := _PLAIN.match(name):
            plain_parts.setdefault(match["module"], {})[match["side"]] = (key, tensor)
        else:
            unknown.append(key)
    if unknown:
        raise AdapterFileError(f"{source}: {len(unknown)} keys are not ICEdit LoRA / MoE-LoRA keys, e.g. "
                               f"{unknown[:3]} (expected <module>.lora_A.weight, .lora_B.weight, "
                               ".lora_A.expert_N.weight, .lora_B.expert_N.weight, .lora_route.weight)")
    if not plain_parts and not expert_parts:
        raise AdapterFileError(f"{source}: no LoRA tensors in the file")

    adapter = Adapter(source=source)
    for module, parts in sorted(plain_parts.items()):
        if module in expert_parts or module in routers:
            raise AdapterFileError(f"{source}: module {module} has both plain and expert LoRA weights")
        adapter.plain[module] = _plain_module(source, module, parts)
    for module in sorted(set(expert_parts) | set(routers)):
        adapter.moe[module] = _moe_module(source, module, expert_parts.get(module, {}), routers.get(module))
    experts = {m.num_experts for m in adapter.moe.values()}
    if len(experts) > 1:
        raise AdapterFileError(f"{source}: MoE modules disagree on the number of experts: {sorted(experts)}")
    return adapter


def _plain_module(source, module, parts) -> LoraModule:
    for side in "AB":
        if side not in parts:
            raise AdapterFileError(f"{source}: {module}.lora_{side}.weight is missing (the other half is there)")
    (key_a, down), (key_b, up) = parts["A"], parts["B"]
    _check_pair(source, key_a, down, key_b, up)
    return LoraModule(down=down, up=up)


def _check_pair(source, key_a, down, key_b, up) -> None:
    if down.ndim != 2 or up.ndim != 2 or down.shape[0] != up.shape[1]:
        raise AdapterFileError(f"{source}: {key_a} is {_shape(down)} and {key_b} is {_shape(up)}; expected "
                               "[rank, in] and [out, rank] with the same rank")


def _moe_module(source, module, parts, router) -> MoEModule:
    if router is None:
        raise AdapterFileError(f"{source}: {module} has expert weights but no {module}.lora_route.weight")
    indices = sorted({index for _, index in parts})
    if not indices:
        raise AdapterFileError(f"{source}: {module} has a router but no expert weights")
    if indices != list(range(len(indices))):
        raise AdapterFileError(f"{source}: {module} has experts {indices}; expected 0..{len(indices) - 1}")
    downs, ups = [], []
    for index in indices:
        for side in "AB":
            if (side, index) not in parts:
                raise AdapterFileError(f"{source}: {module}.lora_{side}.expert_{index}.weight is missing")
        (key_a, down), (key_b, up) = parts[("A", index)], parts[("B", index)]
        _check_pair(source, key_a, down, key_b, up)
        if downs and (down.shape != downs[0].shape or up.shape != ups[0].shape):
            raise AdapterFileError(f"{source}: experts of {module} disagree: expert 0 is A {_shape(downs[0])} / "
                                   f"B {_shape(ups[0])}, expert {index} is A {_shape(down)} / B {_shape(up)} "
                                   "(every expert needs the same rank and sizes)")
        downs.append(down)
        ups.append(up)
    key_r, route = router
    expected = (len(indices), downs[0].shape[1])
    if tuple(route.shape) != expected:
        raise AdapterFileError(f"{source}: {key_r} is {_shape(route)}; with {len(indices)} experts of input "
                               f"{downs[0].shape[1]} it must be {expected[0]}x{expected[1]}")
    return MoEModule(router=route, downs=torch.stack(downs), ups=torch.stack(ups))


def read_adapter(path: str) -> Adapter:
    """Read an adapter from a .safetensors file (never pickle)."""
    import safetensors
    import safetensors.torch

    if not path.lower().endswith((".safetensors", ".sft")):
        raise AdapterFileError(f"{path}: only .safetensors adapter files are read (pickled .ckpt/.pt/.bin files "
                               "can run code when loaded)")
    try:
        with safetensors.safe_open(path, framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
        state_dict = safetensors.torch.load_file(path, device="cpu")
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise AdapterFileError(f"{path}: not a readable safetensors file ({error}); is it truncated or of "
                               "another format?") from error
    adapter = parse_state_dict(state_dict, source=path)
    if TOP_K_METADATA_KEY in metadata:
        try:
            adapter.top_k = int(metadata[TOP_K_METADATA_KEY])
        except ValueError:
            raise AdapterFileError(f"{path}: metadata {TOP_K_METADATA_KEY} = {metadata[TOP_K_METADATA_KEY]!r} "
                                   "is not a whole number") from None
    return adapter


def lora_keys(module: str, expert: int | None = None) -> tuple[str, str]:
    """The released layout's (down, up) keys of a module, or of one of its experts."""
    suffix = "" if expert is None else f".expert_{expert}"
    return f"{KEY_PREFIX}{module}.lora_A{suffix}.weight", f"{KEY_PREFIX}{module}.lora_B{suffix}.weight"


def router_key(module: str) -> str:
    return f"{KEY_PREFIX}{module}.lora_route.weight"


def to_diffusers_lora_state_dict(modules: dict[str, LoraModule]) -> dict[str, torch.Tensor]:
    """Plain modules back in the released key layout (`transformer.<module>.lora_A/B.weight`)."""
    state_dict = {}
    for module, lora in modules.items():
        down_key, up_key = lora_keys(module)
        state_dict[down_key], state_dict[up_key] = lora.down, lora.up
    return state_dict


def is_moe_target(module: str) -> bool:
    """The fork's rule: a module is MoE when its name contains `ff.net` or `proj_out`."""
    return "ff.net" in module or "proj_out" in module
