"""The pack inside a real ComfyUI server (main.py --cpu, headless): discovery, the shipped workflow, a full run
through the executor on the smoke-test models, errors as ComfyUI reports them, and the README's main job."""
from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest
from PIL import Image

from comfyui_icedit.runner import comfy_host, prompt as prompts
from comfyui_icedit.icedit_core.model_files import REAL_MODELS
from icedit_testing import REPO, video_clips
from icedit_testing.server_runs import load_workflow, run_main_job, upload
from icedit_testing.ui_smoke import smoke_ui_workflow

PACK_NODES = {"ICEditDiptych", "ICEditPromptEncode", "ICEditFillConditioning", "ICEditModelSamplingFlux",
              "ICEditCrop", "ICEditMoELoRALoader", "ICEditEarlyFilterSampler", "ICEditVLMJudgeLocal",
              "ICEditVLMJudgeAPI", "ICEditJudgeHeuristic", "ICEditSmokeTestCLIPLoader"}


WORKFLOWS = sorted(n for n in os.listdir(os.path.join(REPO, "workflows")) if n.endswith(".json"))
IMAGE_WORKFLOWS = [name for name in WORKFLOWS if "video" not in name]


def write_source(path, width=100, height=70):
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 5) % 256, (y * 7) % 256, 128) for y in range(height) for x in range(width)])
    image.save(path)
    return str(path)


def test_the_pack_loads_and_lists_its_nodes(comfy_server):
    info = comfy_server.object_info()
    assert PACK_NODES <= set(info)
    for node_id in PACK_NODES:
        assert info[node_id]["category"].startswith("ICEdit")
        for section in ("required", "optional"):
            for name, spec in info[node_id]["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    log = comfy_server.process.log_tail(10_000)
    assert "comfyui-icedit" in log and not [line for line in log.splitlines()
                                              if "IMPORT FAILED" in line and "comfyui-icedit" in line]


def with_source(server, prompt, name, tmp_path):
    """The prompt with a source uploaded: a small clip for the video workflow, an image for the others."""
    if "video" in name:
        clip = video_clips.write_clip(str(tmp_path / "clip.mp4"), video_clips.translating_frames(frames=4))
        return prompts.with_inputs(prompt, video=upload(server, clip))
    return prompts.with_inputs(prompt, image=upload(server, write_source(tmp_path / "example.png")))


@pytest.mark.parametrize("name", WORKFLOWS)
def test_the_shipped_workflows_convert_and_the_server_validates_them(comfy_server, tmp_path, name):
    workflow = load_workflow(name)
    info = comfy_server.object_info()
    types = {node["type"] for node in workflow["nodes"]} - {"Note", "MarkdownNote"}
    assert types <= set(info), f"missing node types: {types - set(info)}"
    prompt = prompts.to_api(workflow, info)
    assert {n["class_type"] for n in prompt.values()} == types
    if "video" in name:  # custom sampling: the scheduler, the sampler choice and the guider are nodes of their own
        nodes_by_type = {n["class_type"]: n["inputs"] for n in prompt.values()}
        settings = {**nodes_by_type["BasicScheduler"], **nodes_by_type["KSamplerSelect"]}
        assert "frames_per_batch" in nodes_by_type["ICEditVideoSampler"]
        assert nodes_by_type["ICEditVideoNoise"]["mode"] == "flow"
        sampler = {"class_type": "ICEditVideoSampler"}
    else:
        sampler = next(n for n in prompt.values()
                       if n["class_type"] in ("KSampler", "ICEditEarlyFilterSampler", "ICEditMultiTurn"))
        settings = sampler["inputs"]
    kontext = "kontext" in name  # FLUX.1 Kontext [dev]: ComfyUI's template settings, 20 steps at guidance 2.5
    qwen = "qwen" in name  # Qwen-Image-Edit-2509: ComfyUI's template, 20 steps at cfg 2.5 with a negative prompt
    steps = 8 if "fast" in name else 20 if kontext or qwen else 28  # the fast workflow: Turbo LoRA
    assert (settings["steps"], settings.get("cfg", 1.0), settings["sampler_name"], settings["scheduler"]) == \
        (steps, 2.5 if qwen else 1.0, "euler", "simple")
    if sampler["class_type"] == "ICEditEarlyFilterSampler":  # the paper's M = 6, m = 10 (of 20 steps: m = 7)
        assert (settings["candidates"], settings["early_steps"], settings["mode"]) == (6, 7 if steps == 20 else 10,
                                                                                       "resume")
    encode = next(n for n in prompt.values() if n["class_type"] in (
        "ICEditPromptEncode", "ICEditKontextEncode", "ICEditQwenImageEditEncode", "ICEditMultiTurn"))
    if qwen:  # the stock TextEncodeQwenImageEditPlus whole (its 1-megapixel reference), AuraFlow shift 3
        assert encode["inputs"]["reference_megapixels"] == 1.0
        assert next(n for n in prompt.values() if n["class_type"] == "ModelSamplingAuraFlow")["inputs"]["shift"] == 3
    else:
        assert encode["inputs"]["guidance"] == (2.5 if kontext else 50.0)
    if kontext:
        assert encode["inputs"].get("editor", "flux_kontext") == "flux_kontext" and encode["inputs"]["kontext_size"]
    # The real file names, as the official releases name them ...
    named = [value for _, _, value in prompts.model_files(prompt)]
    assert named and all(value in REAL_MODELS for value in named), named
    # ... which this server (no real weights) lacks: the runner's worker check names every one before work ...
    lacking = prompts.files_the_server_lacks(prompt, info)
    assert len(lacking) == len(named) and any(item.startswith("UNETLoader.unet_name = ") for item in lacking)
    # ... and ComfyUI's own validation rejects (it checks V1 combos; V3 stock loaders, e.g. UpscaleModelLoader,
    # are not validated by ComfyUI 0.3.75, which is why the runner checks files itself).
    prompt = with_source(comfy_server, prompt, name, tmp_path)
    status, raw = comfy_server.post_json("/prompt", {"prompt": prompt})
    answer = json.loads(raw)
    # 400 when every output needs a missing file; 200 when an output stays valid (the compound workflow's plan).
    assert status == (200 if "compound" in name else 400) and "Traceback" not in raw.decode()
    loaders = {node_id for node_id, _, _ in prompts.model_files(prompt)}
    unet = next(i for i, n in prompt.items() if n["class_type"] == "UNETLoader")
    assert unet in answer["node_errors"] and set(answer["node_errors"]) <= loaders


@pytest.mark.parametrize("name", WORKFLOWS)
def test_the_ui_file_and_its_api_form_are_the_same_prompt(comfy_server, name):
    """The runner converts, then swaps in the smoke models on the API prompt; a user's frontend loads the UI
    file with those files picked. Both must give ComfyUI the same prompt."""
    info = comfy_server.object_info()
    from_api = prompts.smoke_prompt(prompts.to_api(load_workflow(name), info))
    ui = smoke_ui_workflow(load_workflow(name), info)
    from_ui = prompts.to_api(ui, info)
    assert ({k: {**v, "_meta": None} for k, v in from_api.items()} ==
            {k: {**v, "_meta": None} for k, v in from_ui.items()})
    for node in ui["nodes"]:  # the swapped loader carries its own type everywhere the frontend looks
        if node["type"] in ("ICEditSmokeTestCLIPLoader", "ICEditSmokeTestQwenCLIPLoader"):
            assert node["properties"]["Node name for S&R"] == node["type"]
            assert node["properties"]["cnr_id"] == "comfyui-icedit"


def smoke_prompt(server, tmp_path, workflow="icedit_basic.json", instruction="make the sky red", width=100,
                 height=70):
    image = upload(server, write_source(tmp_path / "source.png", width, height))
    api = prompts.smoke_prompt(prompts.to_api(load_workflow(workflow), server.object_info()))
    values = {"candidates": 2, "early_steps": 1} if "early_filter" in workflow else {}
    if "panel_width" in api.inputs:  # ICEdit's diptych (the Kontext workflows edit the whole image)
        values["panel_width"] = 64
    return prompts.with_inputs(api, image=image, instruction=instruction, seed=3, steps=3, **values)


@pytest.mark.parametrize("name", IMAGE_WORKFLOWS)  # the video workflow's run: tests/system/test_video_server.py
def test_the_shipped_workflows_run_through_the_real_executor(comfy_server, tmp_path, name):
    # An instruction of its own, so that ComfyUI's cache cannot answer for the prompt node (and hide its report).
    prompt = smoke_prompt(comfy_server, tmp_path, name, instruction=f"make the sky red ({name[:-5]})")
    body = json.dumps({"prompt": prompt, "client_id": "icedit-test"}).encode()
    request = urllib.request.Request(comfy_server.url + "/prompt", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())
    assert answer["node_errors"] == {}
    prompt_id = answer["prompt_id"]
    deadline = time.monotonic() + 300
    entry = None
    while time.monotonic() < deadline:
        entry = comfy_server.history(prompt_id)
        if entry and entry["status"].get("completed") is not None:
            break
        time.sleep(0.5)
    assert entry is not None and entry["status"]["status_str"] == "success", entry and entry["status"]
    saved = [image for output in entry["outputs"].values() for image in output.get("images", [])]
    edited = [image for image in saved if image["filename"].startswith("edited")]
    comparison = [image for image in saved if image["filename"].startswith("comparison")]
    if "multiturn" in name or "compound" in name:  # one turn here (a one-edit plan): the source and its edit
        assert len(edited) == 1 and len([i for i in saved if i["filename"].startswith("turns")]) == 2
        comparison = [edited[0] | {"expected": (100, 70)}]
    else:
        assert len(edited) == 1 and len(comparison) == 1
    on_disk = os.path.join(comfy_server.process.workdir, "output", edited[0]["subfolder"], edited[0]["filename"])
    scale = 2 if "upscale" in name else 1  # the smoke-test upscaler is 2x
    with Image.open(on_disk) as result:
        assert result.size == (100 * scale, 70 * scale)
    with Image.open(os.path.join(comfy_server.process.workdir, "output", comparison[0]["subfolder"],
                                 comparison[0]["filename"])) as result:
        assert result.size == comparison[0].get("expected", (200, 70))
    texts = [text for output in entry["outputs"].values() for text in output.get("text", [])]
    encode_ids = [i for i, n in prompt.items() if n["class_type"] == "ICEditPromptEncode"]
    for encode_id in encode_ids:  # the token report, shown on the node by web/js/show_text.js
        assert entry["outputs"][encode_id]["text"][0].endswith("nothing cut."), entry["outputs"][encode_id]
    if "moe" in name:  # the loader's report, shown by PreviewAny
        assert any("2 MoE modules (4 experts x rank 32" in text and "routed per token (top-1)" in text
                   for text in texts), texts
    if "compound" in name:  # the plan, and every checked try in the log
        assert any(text.startswith("make the sky red") and "rules" in text for text in texts), texts
        assert any("turn 1 try 1: seed" in text and "NFE" in text for text in texts), texts
    if "early_filter" in name:  # the sampler's report and the candidates the judge saw
        assert any("Early Filter (resume, pairwise, judge local): 2 candidates x 1 steps" in text and
                   "winner: #" in text for text in texts), texts
        previews = [image for image in saved if image["type"] == "temp"]
        assert len(previews) == 2
    assert "lora key not loaded" not in comfy_server.process.log_tail(100_000).lower()


def test_node_errors_reach_the_user_as_comfyui_reports_them(comfy_server, tmp_path):
    prompt = smoke_prompt(comfy_server, tmp_path, instruction="   ")
    with pytest.raises(comfy_host.ComfyError, match=r"ICEditPromptEncode.*instruction is empty"):
        comfy_server.run(prompt, timeout=300)


@pytest.mark.parametrize("workflow", ["basic", "early_filter", "upscale", "kontext_early_filter"])
def test_the_main_job_command_edits_through_a_running_server(comfy_server, tmp_path, workflow):
    source = write_source(tmp_path / "photo.png", 90, 120)
    output = tmp_path / "out"
    result = run_main_job("--server", comfy_server.url, "--workflow", workflow, "--smoke-test",
                          "--edit", source, "make the shirt blue", "--output", output, "--steps", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SMOKE TEST" in result.stdout
    scale = 2 if workflow == "upscale" else 1  # the smoke-test upscaler is 2x
    with Image.open(output / "photo_edited.png") as edited:
        assert edited.size == (90 * scale, 120 * scale)
    with Image.open(output / "photo_comparison.png") as comparison:
        assert comparison.size == (180, 120)
    ledger = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    assert [(e["id"], e["status"], e["workflow"]) for e in ledger] == [("photo", "ok", workflow)]


def test_the_workflows_are_served_as_templates(comfy_server):
    templates = comfy_server.get_json("/workflow_templates")
    assert sorted(templates["comfyui-icedit"]) == sorted(name[:-len(".json")] for name in WORKFLOWS)
    for name in WORKFLOWS:
        served = comfy_server.get_json(f"/api/workflow_templates/comfyui-icedit/{name}")
        assert served == load_workflow(name)
        thumbnail = urllib.request.urlopen(
            f"{comfy_server.url}/api/workflow_templates/comfyui-icedit/{name[:-len('.json')]}.jpg").read()
        assert thumbnail[:3] == b"\xff\xd8\xff"  # a JPEG


def test_a_missing_model_file_is_comfyuis_own_validation_error(comfy_server, tmp_path):
    prompt = smoke_prompt(comfy_server, tmp_path, "icedit_moe.json")
    loader = next(n for n in prompt.values() if n["class_type"] == "ICEditMoELoRALoader")
    loader["inputs"]["lora_name"] = "ICEdit-MoE-LoRA/pytorch_lora_weights.safetensors"  # not on this server
    status, raw = comfy_server.post_json("/prompt", {"prompt": prompt})
    answer = json.loads(raw)
    assert status in (200, 400), answer  # 200 when some outputs stay valid: node_errors tells
    loader_id = next(i for i, n in prompt.items() if n["class_type"] == "ICEditMoELoRALoader")
    assert set(answer["node_errors"]) == {loader_id}
    errors = answer["node_errors"][loader_id]["errors"]
    # A V3 combo: ComfyUI 0.3.75 leaves its value to the node's validate_inputs, reported the same way.
    assert {e["type"] for e in errors} == {"custom_validation_failed"}
    assert "lora_name = 'ICEdit-MoE-LoRA/pytorch_lora_weights.safetensors' is not one of" in errors[0]["details"]
    assert "Traceback" not in raw.decode()


def test_a_shifted_widget_value_in_our_nodes_is_a_validation_error(comfy_server, tmp_path):
    prompt = smoke_prompt(comfy_server, tmp_path, "icedit_early_filter.json")
    sampler_id, sampler = next((i, n) for i, n in prompt.items() if n["class_type"] == "ICEditEarlyFilterSampler")
    sampler["inputs"]["mode"], sampler["inputs"]["judge_mode"] = "pairwise", "resume"  # values one slot off
    status, raw = comfy_server.post_json("/prompt", {"prompt": prompt})
    answer = json.loads(raw)
    assert set(answer["node_errors"]) == {sampler_id}
    details = answer["node_errors"][sampler_id]["errors"][0]["details"]
    assert "mode = 'pairwise' is not one of the choices here ['resume', 'paper']" in details
    # ComfyUI files a failed V3 validation under an input of its own choosing ("model - ..."); the message the
    # user reads after it must still name the input at fault.
    assert details.split(" - ", 1)[1].startswith("mode = 'pairwise'")


def test_a_bad_template_is_reported_under_its_own_name(comfy_server, tmp_path):
    prompt = smoke_prompt(comfy_server, tmp_path, "icedit_basic.json")
    encode_id, encode = next((i, n) for i, n in prompt.items() if n["class_type"] == "ICEditPromptEncode")
    encode["inputs"]["template"] = "diptych-v2"  # not a choice; the third input, after clip and instruction
    _, raw = comfy_server.post_json("/prompt", {"prompt": prompt})
    errors = json.loads(raw)["node_errors"][encode_id]["errors"]
    assert errors[0]["type"] == "custom_validation_failed"
    assert errors[0]["details"].split(" - ", 1)[1].startswith("template = 'diptych-v2' is not one of the choices")


def reset_executor_cache(server) -> None:
    """/free, then a tiny prompt. /free sets flags and wakes ComfyUI's prompt worker, which reads them only after
    its queue returns (PromptQueue.get, main.prompt_worker); a prompt posted at once can be in the queue by the time
    the woken worker looks, and is then run before the flags are read, from the old cache (seen once, on a loaded
    machine). Once the tiny prompt has run the flags are read, and the cache reset, before the worker takes the
    next prompt."""
    server.post_json("/free", {"free_memory": True, "unload_models": True})
    server.run({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
                "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}, timeout=120)


def test_three_turns_through_the_real_executor_reproduce_with_the_same_seeds(comfy_server, tmp_path):
    source = write_source(tmp_path / "turns.png", 90, 60)

    def run_once():
        name = upload(comfy_server, source)
        api = prompts.smoke_prompt(prompts.to_api(load_workflow("icedit_multiturn.json"), comfy_server.object_info()))
        prompt = prompts.with_inputs(api, image=name, instruction="make it red\nadd a hat\nmake it snowy", seed=5,
                                     steps=2, panel_width=64)
        entry = comfy_server.run(prompt, timeout=600)
        images = [i for output in entry["outputs"].values() for i in output.get("images", [])]
        texts = [t for output in entry["outputs"].values() for t in output.get("text", [])]
        turns = sorted((i for i in images if i["filename"].startswith("turns")), key=lambda i: i["filename"])
        pixels = []
        for image in turns:
            with Image.open(os.path.join(comfy_server.process.workdir, "output", image["subfolder"], image["filename"])) as png:
                assert png.size == (90, 60)
                pixels.append(png.tobytes())
        cached = [data["nodes"] for kind, data in entry["status"]["messages"] if kind == "execution_cached"]
        return pixels, texts, [node for nodes in cached for node in nodes]

    # The second run must be executed again, not served from ComfyUI's cache: /free resets the executor's cache.
    first, texts, _ = run_once()
    reset_executor_cache(comfy_server)
    second, _, cached = run_once()
    assert cached == []
    assert len(first) == 4  # the source and three turns
    assert any("turn 1: seed 5: make it red" in t and "turn 3: seed 7: make it snowy" in t for t in texts)
    assert first == second
    assert len(set(first)) == 4  # every turn changed the image


def edited_pixels(server, entry, prefix="edited") -> bytes:
    image = next(i for output in entry["outputs"].values() for i in output.get("images", [])
                 if i["filename"].startswith(prefix))
    with Image.open(os.path.join(server.process.workdir, "output", image["subfolder"], image["filename"])) as png:
        return png.tobytes()


def test_checked_turns_through_the_real_executor_keep_the_third_seed(comfy_server, tmp_path):
    """The compound workflow with an API judge on a loopback chat server that scores the first two tries low:
    the log shows the retries and the NFE, and the result is a plain run of the kept seed."""
    from icedit_testing.chat_server import ChatServer

    name = upload(comfy_server, write_source(tmp_path / "checked.png", 80, 60))
    quality = '{"score": [8, 8]}'
    script = [(200, '{"score": [2, 9]}', 0), (200, quality, 0), (200, '{"score": [3, 9]}', 0), (200, quality, 0),
              (200, '{"score": [8, 9]}', 0), (200, quality, 0)]
    with ChatServer(script) as judge_server:
        api = prompts.smoke_prompt(prompts.to_api(load_workflow("icedit_compound.json"), comfy_server.object_info()))
        judge_id = next(i for i, n in api.items() if n["class_type"] == "ICEditVLMJudgeLocal")
        api[judge_id] = {"class_type": "ICEditVLMJudgeAPI", "inputs": {
            "base_url": judge_server.url, "model": "judge", "api_key_env": "", "timeout": 60.0, "retries": 0}}
        checked = comfy_server.run(prompts.with_inputs(api, image=name, instruction="make it red", seed=5, steps=2,
                                                       panel_width=64), timeout=600)
    texts = [t for output in checked["outputs"].values() for t in output.get("text", [])]
    log = next(t for t in texts if "NFE" in t)
    assert "turn 1 try 1: seed 5, SC 2.0 (below 6): not kept" in log
    assert "turn 1 try 2: seed 6, SC 3.0 (below 6): not kept" in log
    assert "turn 1 try 3: seed 7, SC 8.0: kept" in log and "NFE 6 " in log
    plain = prompts.smoke_prompt(prompts.to_api(load_workflow("icedit_multiturn.json"), comfy_server.object_info()))
    alone = comfy_server.run(prompts.with_inputs(plain, image=name, instruction="make it red", seed=7, steps=2,
                                                 panel_width=64), timeout=600)
    assert edited_pixels(comfy_server, checked) == edited_pixels(comfy_server, alone)
