"""Per-step time of one Flux Fill model: unpatched, with ICEdit's MoE-LoRA through ICEditMoELoRALoader, and with
a naive reference (every LoRA module unmerged as forward hooks, tokens looped per expert). One run, medians,
ratios against the unpatched model measured in the same run. Not a test.

    scripts/bench moe_step                 # small model on this machine's CPU
    scripts/bench moe_step --full          # FLUX.1 Fill size (19 + 38 blocks, 3072 wide, random bf16
                                             # weights) at a 1024x512 diptych with 512 text tokens: needs a GPU
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

from .common import add_model_size_arguments, use_full_size, write_results


import comfy.lora
import comfy.model_management
import folder_paths
import safetensors.torch
import torch

from ..devtools import smoke_adapters, smoke_models
from ..icedit_core import adapter_file
from ..nodes.flux_hooks import flux_moe_module_path
from ..nodes.moe import ICEditMoELoRALoader


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="FLUX.1 Fill size on the GPU, bf16")
    add_model_size_arguments(parser, hidden=768, heads=6, double=2, single=4)
    parser.add_argument("--height", type=int, default=256, help="diptych height in pixels")
    parser.add_argument("--width", type=int, default=512, help="diptych width in pixels")
    parser.add_argument("--text-tokens", type=int, default=64)
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    if args.full:
        use_full_size(args)
        args.height, args.width, args.text_tokens, args.dtype = 512, 1024, 512, "bfloat16"
        args.repeats = max(args.repeats, 30)
    return args


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def naive_hooks(model, adapter):
    """Every adapter module unmerged as a forward hook; MoE tokens grouped per expert in a Python loop."""
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    diffusion_model = model.model.diffusion_model
    handles = []
    for module, lora in adapter.plain.items():
        target = key_map[f"transformer.{module}"]
        weight_key, offset = (target, None) if isinstance(target, str) else target
        linear = diffusion_model.get_submodule(weight_key[len("diffusion_model."):-len(".weight")])
        down, up = (t.to(linear.weight.device, linear.weight.dtype) for t in (lora.down, lora.up))

        def plain(mod, args, output, down=down, up=up, offset=offset):
            delta = (args[0] @ down.t()) @ up.t()
            if offset is None:
                return output + delta
            output = output.clone()
            output.narrow(-1, offset[1], offset[2]).add_(delta)
            return output
        handles.append(linear.register_forward_hook(plain))
    for module, moe in adapter.moe.items():
        linear = diffusion_model.get_submodule(flux_moe_module_path(module))
        router, downs, ups = (t.to(linear.weight.device, linear.weight.dtype) for t in (moe.router, moe.downs, moe.ups))

        def routed(mod, args, output, router=router, downs=downs, ups=ups):
            x = args[0].reshape(-1, args[0].shape[-1])
            choice = (x @ router.t()).float().argmax(-1)
            out = output.reshape(-1, output.shape[-1]).clone()
            for expert in range(downs.shape[0]):
                rows = (choice == expert).nonzero(as_tuple=True)[0]
                if rows.numel():
                    out.index_add_(0, rows, (x[rows] @ downs[expert].t()) @ ups[expert].t())
            return out.view(output.shape)
        handles.append(linear.register_forward_hook(routed))
    return handles


def time_step(patcher, inputs, synchronize) -> float:
    comfy.model_management.load_models_gpu([patcher])  # applies (or, for the base model, removes) merged patches
    options = {"wrappers": patcher.wrappers}
    with torch.no_grad():
        synchronize()
        start = time.perf_counter()
        patcher.model.diffusion_model(inputs["x"], inputs["timestep"], inputs["context"], y=inputs["y"],
                                      guidance=inputs["guidance"], transformer_options=options)
        synchronize()
    return (time.perf_counter() - start) * 1000


def round_robin(variants: dict, inputs, repeats: int, warmup: int, synchronize) -> dict[str, list[float]]:
    """Times one step of each variant per round, so that drift in the machine's speed hits all alike."""
    times = {name: [] for name in variants}
    for index in range(warmup + repeats):
        for name, (patcher, enter, leave) in variants.items():
            enter()
            try:
                elapsed = time_step(patcher, inputs, synchronize)
            finally:
                leave()
            if index >= warmup:
                times[name].append(elapsed)
    return times


def main():
    args = parse_args()
    device = comfy.model_management.get_torch_device()
    dtype = getattr(torch, args.dtype)
    config = smoke_models.flux_fill_config(hidden_size=args.hidden, num_heads=args.heads,
                                           depth=args.double, depth_single_blocks=args.single)
    config["context_in_dim"], config["vec_in_dim"] = (4096, 768) if args.full else (64, 64)
    print(f"building a random Flux Fill: {args.double}+{args.single} blocks, width {args.hidden}, {args.dtype}, "
          f"on {machine()}", flush=True)
    model = smoke_models.build_flux_fill(config, seed=0, dtype=dtype, device=device)
    shapes = smoke_adapters.lora_target_shapes(args.hidden, args.double, args.single, in_channels=96)
    state_dict = smoke_adapters.random_moe_lora_state_dict(shapes, rank=args.rank, num_experts=args.experts,
                                                         dtype=torch.bfloat16 if args.full else torch.float32)
    folder = tempfile.mkdtemp(prefix="icedit-bench-")
    safetensors.torch.save_file(state_dict, os.path.join(folder, "bench-moe.safetensors"))
    folder_paths.add_model_folder_path("loras", folder, is_default=True)

    generator = torch.Generator().manual_seed(1)
    latent_h, latent_w = args.height // 8, args.width // 8
    inputs = {"x": torch.randn(1, 96, latent_h, latent_w, generator=generator),
              "context": torch.randn(1, args.text_tokens, config["context_in_dim"], generator=generator),
              "y": torch.randn(1, config["vec_in_dim"], generator=generator),
              "timestep": torch.tensor([0.6]), "guidance": torch.tensor([50.0])}
    inputs = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in inputs.items()}
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    results = {"machine": machine(), "torch": torch.__version__, "config": vars(args),
               "image_tokens": (latent_h // 2) * (latent_w // 2), "text_tokens": args.text_tokens}
    patched, report = ICEditMoELoRALoader.execute(model, "bench-moe.safetensors", 1.0, 1).result
    adapter = adapter_file.read_adapter(os.path.join(folder, "bench-moe.safetensors"))
    naive = []

    def add_naive():
        naive.extend(naive_hooks(model, adapter))

    def remove_naive():
        while naive:
            naive.pop().remove()

    nothing = lambda: None  # noqa: E731
    runs = round_robin({"unpatched": (model, nothing, nothing),
                        "icedit_moe_loader": (patched, nothing, nothing),
                        "naive_unmerged_looped": (model, add_naive, remove_naive)},
                       inputs, args.repeats, args.warmup, synchronize)
    baseline = statistics.median(runs["unpatched"])
    print(f"\n{report}\n{results['image_tokens']} image + {args.text_tokens} text tokens, "
          f"{args.repeats} timed steps each after {args.warmup} warm-up, on {results['machine']}")
    print(f"{'variant':<24}{'median ms':>12}{'ratio':>8}")
    for name, times in runs.items():
        median = statistics.median(times)
        results[name] = {"median_ms": median, "ratio": median / baseline, "times_ms": times}
        print(f"{name:<24}{median:>12.2f}{median / baseline:>8.3f}")
    write_results(args.out, results)


if __name__ == "__main__":
    main()
