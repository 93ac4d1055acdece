"""The MoE-LoRA: file parsing, routing maths, ICEditMoELoRALoader against a diffusers reference, patch
isolation and bad input — all on ComfyUI's real Flux classes."""
from __future__ import annotations

import logging

import comfy.lora
import comfy.model_management
import comfy.model_patcher
import comfy.sample
import comfy.supported_models
import folder_paths
import nodes as comfy_nodes
import pytest
import safetensors.torch
import torch

from comfyui_icedit.devtools import smoke_adapters, smoke_models
from comfyui_icedit.icedit_core import adapter_file
from comfyui_icedit.icedit_core.moe import TokenRoutedLoRA, route
from comfyui_icedit.nodes.flux_hooks import WRAPPER_KEY
from comfyui_icedit.nodes.moe import ICEditMoELoRALoader
from icedit_testing import reference_flux

PARITY_TOLERANCE = 1e-4


@pytest.fixture
def loras_dir(tmp_path):
    folder = tmp_path / "loras"
    folder.mkdir()
    folder_paths.add_model_folder_path("loras", str(folder), is_default=True)  # found first
    yield folder
    folder_paths.folder_names_and_paths["loras"][0].remove(str(folder))


def save_adapter(folder, name, state_dict, metadata=None):
    safetensors.torch.save_file(state_dict, str(folder / name), metadata=metadata)
    return name


def adapter_for(config, num_experts=4, rank=8, seed=3, scale=0.05, router_scale=8.0):
    shapes = smoke_adapters.lora_target_shapes(config["hidden_size"], config["depth"], config["depth_single_blocks"],
                                             in_channels=config["in_channels"])
    return smoke_adapters.random_moe_lora_state_dict(shapes, rank=rank, num_experts=num_experts, seed=seed,
                                                   scale=scale, router_scale=router_scale)


def assert_untouched(model):
    assert model.patches == {}
    assert not model.get_wrappers("diffusion_model", WRAPPER_KEY)


def no_instance_forwards(model) -> bool:
    return all("forward" not in module.__dict__ for module in model.model.diffusion_model.modules())


# -- the file --------------------------------------------------------------------------------------------------

def test_the_released_moe_layout_parses_with_the_published_counts():
    shapes = smoke_adapters.lora_target_shapes(3072, 19, 38)
    state_dict = smoke_adapters.random_moe_lora_state_dict(shapes, rank=32, num_experts=4, dtype=torch.bfloat16)
    plain_tensors = [k for k in state_dict if k.endswith(("lora_A.weight", "lora_B.weight"))]
    assert (len(plain_tensors), len(state_dict) - len(plain_tensors)) == (572, 513)
    adapter = adapter_file.parse_state_dict(state_dict, "moe.safetensors")
    assert (len(adapter.plain), len(adapter.moe), adapter.num_experts) == (286, 57, 4)
    assert {m.rank for m in adapter.moe.values()} == {32}
    plain = sum(m.down.numel() + m.up.numel() for m in adapter.plain.values())
    routers = sum(m.router.numel() for m in adapter.moe.values())
    assert round(plain / 1e6, 1) == 84.2 and round(routers / 1e6, 2) == 3.27
    assert round(adapter.parameter_count() / 1e6, 1) == 214.4
    assert "57 MoE modules (4 experts x rank 32" in adapter.describe()


@pytest.mark.parametrize("prefix", ["transformer.", "", "base_model.model."])
def test_prefixes_are_accepted(prefix):
    state_dict = adapter_for(smoke_models.TINY_FLUX_FILL | {"depth": 1, "depth_single_blocks": 1})
    renamed = {prefix + key[len("transformer."):]: value for key, value in state_dict.items()}
    adapter = adapter_file.parse_state_dict(renamed)
    assert len(adapter.moe) == 2 and len(adapter.plain) == 11


def test_experts_and_ranks_come_from_the_file():
    config = smoke_models.TINY_FLUX_FILL | {"depth": 1, "depth_single_blocks": 1}
    adapter = adapter_file.parse_state_dict(adapter_for(config, num_experts=6, rank=4))
    assert adapter.num_experts == 6 and {m.rank for m in adapter.moe.values()} == {4}


# -- the maths ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("experts,top_k", [(4, 1), (4, 2), (6, 1), (6, 3), (8, 8)])
def test_token_routed_lora_matches_a_per_token_loop(experts, top_k):
    generator = torch.Generator().manual_seed(experts * 10 + top_k)
    rank, fan_in, fan_out = 5, 24, 12
    router = torch.randn(experts, fan_in, generator=generator)
    downs = torch.randn(experts, rank, fan_in, generator=generator)
    ups = torch.randn(experts, fan_out, rank, generator=generator)
    x = torch.randn(3, 7, fan_in, generator=generator)
    layer = TokenRoutedLoRA(router, downs, ups, top_k=top_k, scale=0.5, strength=0.8)
    expected = torch.zeros(3, 7, fan_out)
    for index in torch.cartesian_prod(torch.arange(3), torch.arange(7)):
        token = x[index[0], index[1]]
        logits = router @ token
        values, chosen = torch.topk(logits, top_k)
        for weight, expert in zip(torch.softmax(values, 0), chosen, strict=True):
            expected[index[0], index[1]] += weight * ups[expert] @ (downs[expert] @ token) * 0.5 * 0.8
    torch.testing.assert_close(layer.delta(x), expected, rtol=1e-5, atol=1e-5)


def test_top_1_routing_weight_is_exactly_one():
    gates = route(torch.randn(50, 4), 1)
    assert torch.all((gates == 0) | (gates == 1)) and torch.all(gates.sum(-1) == 1)


# -- parity with diffusers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("num_experts,top_k,strength", [(4, 1, 1.0), (4, 2, 1.0), (6, 1, 0.7)])
def test_moe_loader_matches_the_diffusers_reference(loras_dir, num_experts, top_k, strength):
    reference, model, config = reference_flux.flux_pair()
    inputs = reference_flux.random_inputs(config)
    base = reference_flux.run_reference(reference, inputs)
    torch.testing.assert_close(reference_flux.run_comfy(model, inputs), base, rtol=0, atol=PARITY_TOLERANCE)

    state_dict = adapter_for(config, num_experts=num_experts, seed=num_experts + top_k)
    name = save_adapter(loras_dir, f"moe-{num_experts}-{top_k}.safetensors", state_dict)
    patched, report = ICEditMoELoRALoader.execute(model, name, strength, top_k).result
    assert f"{num_experts} experts" in report and f"top-{top_k}" in report

    margins = []
    handles = reference_flux.attach_reference_adapter(reference, state_dict, top_k, strength, margins)
    try:
        expected = reference_flux.run_reference(reference, inputs)
    finally:
        for handle in handles:
            handle.remove()
    # Hard top-k routing is discontinuous: the comparison is only meaningful where no token's choice hinges on
    # rounding. The router scale in adapter_for keeps the gaps wide; make sure they are.
    assert min(margins) > 1e-3
    assert (expected - base).abs().max() > 1e-2  # the adapter changes the output noticeably
    torch.testing.assert_close(reference_flux.run_comfy(patched, inputs), expected, rtol=0, atol=PARITY_TOLERANCE)
    assert no_instance_forwards(patched)
    assert_untouched(model)


@pytest.mark.parametrize("loader", ["stock LoraLoaderModelOnly", "ICEditMoELoRALoader"])
def test_the_normal_lora_matches_the_diffusers_reference(loras_dir, loader):
    reference, model, config = reference_flux.flux_pair()
    inputs = reference_flux.random_inputs(config)
    state_dict = adapter_for(config, num_experts=0)
    name = save_adapter(loras_dir, "normal.safetensors", state_dict)
    if loader == "ICEditMoELoRALoader":
        patched, report = ICEditMoELoRALoader.execute(model, name, 1.0, 0).result
        assert "a normal LoRA" in report
    else:
        (patched,) = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(model, name, 1.0)
    handles = reference_flux.attach_reference_adapter(reference, state_dict)
    expected = reference_flux.run_reference(reference, inputs)
    for handle in handles:
        handle.remove()
    torch.testing.assert_close(reference_flux.run_comfy(patched, inputs), expected, rtol=0, atol=PARITY_TOLERANCE)


# -- isolation ------------------------------------------------------------------------------------------------------

def sample(patcher, latent, steps=2, callback=None):
    """comfy.sample.sample at cfg 1 with a fixed random text conditioning and empty Fill channels."""
    positive = [[torch.randn(1, 5, 64, generator=torch.Generator().manual_seed(2)),
                 {"pooled_output": torch.zeros(1, 64), "guidance": 50.0,
                  "concat_latent_image": torch.zeros_like(latent), "concat_mask": torch.zeros(1, 1, 32, 48)}]]
    negative = [[torch.zeros(1, 5, 64), dict(positive[0][1])]]
    noise = comfy.sample.prepare_noise(latent, 5)
    return comfy.sample.sample(patcher, noise, steps, 1.0, "euler", "simple", positive, negative, latent,
                               callback=callback, disable_pbar=True, seed=5)


def test_sampling_with_the_moe_clone_leaves_the_base_model_bit_identical(loras_dir):
    _, model, config = reference_flux.flux_pair()
    inputs = reference_flux.random_inputs(config)
    before = reference_flux.run_comfy(model, inputs)
    name = save_adapter(loras_dir, "moe.safetensors", adapter_for(config))
    patched = ICEditMoELoRALoader.execute(model, name, 1.0, 1).result[0]
    latent = torch.zeros(1, 16, 4, 6)
    with_moe = sample(patched, latent)
    without = sample(model, latent)
    assert not torch.allclose(with_moe, without)
    assert torch.equal(reference_flux.run_comfy(model, inputs), before)
    assert no_instance_forwards(model) and no_instance_forwards(patched)
    assert_untouched(model)


def test_an_interrupted_sampling_removes_the_hooks(loras_dir):
    _, model, config = reference_flux.flux_pair()
    inputs = reference_flux.random_inputs(config)
    before = reference_flux.run_comfy(model, inputs)
    name = save_adapter(loras_dir, "moe.safetensors", adapter_for(config))
    patched = ICEditMoELoRALoader.execute(model, name, 1.0, 1).result[0]

    def interrupt(step, x0, x, total):
        raise comfy.model_management.InterruptProcessingException()

    with pytest.raises(comfy.model_management.InterruptProcessingException):
        sample(patched, torch.zeros(1, 16, 4, 6), steps=3, callback=interrupt)
    assert no_instance_forwards(patched)
    assert torch.equal(reference_flux.run_comfy(model, inputs), before)


def test_low_vram_weight_casting_and_on_the_fly_patches_compose_with_the_hooks(loras_dir):
    _, model, config = reference_flux.flux_pair()
    inputs = reference_flux.random_inputs(config)
    name = save_adapter(loras_dir, "moe.safetensors", adapter_for(config))
    patched = ICEditMoELoRALoader.execute(model, name, 1.0, 1).result[0]
    fully_loaded = reference_flux.run_comfy(patched, inputs)
    comfy.model_management.unload_all_models()
    # A one-byte budget: every layer is cast per call and the plain LoRA is applied on the fly (LowVramPatch).
    patched.load(torch.device("cpu"), lowvram_model_memory=1)
    try:
        cast = [m for m in patched.model.diffusion_model.modules() if getattr(m, "comfy_cast_weights", False)]
        assert cast and any(getattr(m, "weight_function", None) for m in cast)
        torch.testing.assert_close(reference_flux.forward(patched, inputs), fully_loaded, rtol=1e-5, atol=1e-5)
    finally:
        patched.detach()
    assert no_instance_forwards(patched)


def test_another_lora_after_the_moe_loader_patches_exactly_as_on_the_plain_model(loras_dir, caplog):
    _, model, config = reference_flux.flux_pair()
    inputs = reference_flux.random_inputs(config)
    # An MoE adapter whose every B is zero: routed and hooked, but adding exactly nothing.
    zero = {k: (torch.zeros_like(v) if ".lora_B." in k else v) for k, v in adapter_for(config).items()}
    moe_name = save_adapter(loras_dir, "moe-zero.safetensors", zero)
    other_name = save_adapter(loras_dir, "other.safetensors", adapter_for(config, num_experts=0, seed=9))
    moe_model = ICEditMoELoRALoader.execute(model, moe_name, 1.0, 1).result[0]
    with caplog.at_level(logging.WARNING):
        (stacked,) = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(moe_model, other_name, 1.0)
        (plain,) = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(model, other_name, 1.0)
    assert not [r for r in caplog.records if "not loaded" in r.getMessage().lower()]
    assert stacked.get_wrappers("diffusion_model", WRAPPER_KEY)  # the MoE hooks travel with the clone
    other_keys = set(plain.patches)
    assert other_keys <= set(stacked.patches)
    torch.testing.assert_close(reference_flux.run_comfy(stacked, inputs), reference_flux.run_comfy(plain, inputs),
                               rtol=0, atol=0)


# -- bad input ------------------------------------------------------------------------------------------------------

def expect_refusal(model, name, match, top_k=1):
    with pytest.raises(ValueError, match=match):
        ICEditMoELoRALoader.execute(model, name, 1.0, top_k)
    assert_untouched(model)


@pytest.fixture(scope="module")
def small_model():
    return reference_flux.flux_pair(1, 1)[1:]


def test_truncated_file(loras_dir, small_model):
    model, config = small_model
    save_adapter(loras_dir, "full.safetensors", adapter_for(config))
    data = (loras_dir / "full.safetensors").read_bytes()
    (loras_dir / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    expect_refusal(model, "truncated.safetensors", r"truncated\.safetensors: not a readable safetensors file")


def test_not_a_safetensors_file(loras_dir, small_model):
    model, _ = small_model
    (loras_dir / "text.safetensors").write_text("this is not a tensor file")
    expect_refusal(model, "text.safetensors", "not a readable safetensors file")
    (loras_dir / "pickled.ckpt").write_bytes(b"\x80\x04")
    expect_refusal(model, "pickled.ckpt", r"only \.safetensors")


def test_an_adapter_for_another_base(loras_dir, small_model):
    model, config = small_model
    wider = dict(config, hidden_size=256)
    save_adapter(loras_dir, "wide.safetensors", adapter_for(wider))
    expect_refusal(model, "wide.safetensors", r"another base model")
    deeper = dict(config, depth=3)
    save_adapter(loras_dir, "deep.safetensors", adapter_for(deeper))
    expect_refusal(model, "deep.safetensors", r"transformer_blocks\.[12]\.")


def test_experts_with_inconsistent_ranks(loras_dir, small_model):
    model, config = small_model
    state_dict = adapter_for(config)
    key = "transformer.transformer_blocks.0.ff.net.2.lora_A.expert_1.weight"
    state_dict[key] = state_dict[key][:4].contiguous()
    state_dict[key.replace("lora_A", "lora_B")] = state_dict[key.replace("lora_A", "lora_B")][:, :4].contiguous()
    save_adapter(loras_dir, "ranks.safetensors", state_dict)
    expect_refusal(model, "ranks.safetensors", r"experts of transformer_blocks\.0\.ff\.net\.2 disagree.*4x512")


def test_a_router_whose_rows_disagree_with_the_experts(loras_dir, small_model):
    model, config = small_model
    state_dict = adapter_for(config)
    key = "transformer.single_transformer_blocks.0.proj_out.lora_route.weight"
    state_dict[key] = state_dict[key][:3].contiguous()
    save_adapter(loras_dir, "router.safetensors", state_dict)
    expect_refusal(model, "router.safetensors", r"lora_route\.weight is 3x640; with 4 experts .* must be 4x640")


def test_a_lora_for_another_model_family(loras_dir, small_model):
    model, _ = small_model
    save_adapter(loras_dir, "sd15.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(320, 4)})
    expect_refusal(model, "sd15.safetensors", "not ICEdit LoRA / MoE-LoRA keys")


def test_top_k_larger_than_the_experts(loras_dir, small_model):
    model, config = small_model
    save_adapter(loras_dir, "moe.safetensors", adapter_for(config))
    expect_refusal(model, "moe.safetensors", r"top_k = 5 must be between 1 and the number of experts \(4\)", top_k=5)


def test_top_k_from_the_file_metadata(loras_dir, small_model):
    model, config = small_model
    name = save_adapter(loras_dir, "moe-k2.safetensors", adapter_for(config), metadata={"top_k": "2"})
    assert "top-2" in ICEditMoELoRALoader.execute(model, name, 1.0, 0).result[1]


def test_a_flux_model_that_is_not_fill_is_warned_about(loras_dir, caplog):
    config = dict(smoke_models.TINY_FLUX_FILL, in_channels=16, depth=1, depth_single_blocks=1)
    model_config = comfy.supported_models.Flux(dict(config))
    model_config.set_inference_dtype(torch.float32, None)
    model = comfy.model_patcher.ModelPatcher(smoke_models.randomize_(model_config.get_model({}), 0),
                                             load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    name = save_adapter(loras_dir, "moe16.safetensors", adapter_for(config))
    with caplog.at_level(logging.WARNING):
        report = ICEditMoELoRALoader.execute(model, name, 1.0, 1).result[1]
    assert "not FLUX.1 Fill" in report
    assert any("not FLUX.1 Fill" in r.getMessage() for r in caplog.records)
