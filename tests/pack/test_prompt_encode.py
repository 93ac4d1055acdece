"""What ICEdit Prompt Encode tells the user about the tokens FLUX.1's encoders read (smoke text encoders)."""
from __future__ import annotations

from comfyui_icedit.icedit_core import prompts
from comfyui_icedit.nodes.edit import ICEditPromptEncode
from comfyui_icedit.nodes.edit_path import T5_TOKEN_LIMIT
from comfyui_icedit.nodes.smoke_test import SMOKE_TEST_T5_MIN_LENGTH


def encode(clip, instruction):
    output = ICEditPromptEncode.execute(clip, instruction, "released", "", 50.0)
    positive, _, text, _ = output.result
    return positive, text, output.ui.as_dict()["text"][0]


def test_a_short_prompt_reports_its_tokens_and_nothing_cut(clip):
    positive, _, shown = encode(clip, "make the sky red")
    assert shown.startswith("Prompt: ") and "T5 tokens" in shown and shown.endswith("nothing cut.")
    t5_tokens = int(shown.split("Prompt: ")[1].split(" T5 tokens")[0])
    # Every token reaches the model, padded only to the smoke encoders' minimum (real Flux T5 pads to 256).
    assert t5_tokens > SMOKE_TEST_T5_MIN_LENGTH and positive[0][0].shape[1] == t5_tokens + 1  # and the end token


def test_a_5000_character_instruction_is_cut_at_512_t5_tokens_and_the_node_says_so(clip, caplog):
    instruction = ("add a small red kite with a long tail above the old lighthouse, " * 80)[:5000]
    positive, text, shown = encode(clip, instruction)
    assert text.endswith(instruction.strip())  # the prompt output is the text as written
    assert positive[0][0].shape[1] == T5_TOKEN_LIMIT  # what FLUX.1 reads
    assert f"T5 kept the first {T5_TOKEN_LIMIT - 1} of " in shown and "Shorten the instruction" in shown
    total = int(shown.split(f"first {T5_TOKEN_LIMIT - 1} of ")[1].split()[0])
    assert total > 1000
    assert "CLIP-L's pooled summary reads the first 75 of" in shown
    assert "The prompt is long" in caplog.text  # and in the server log


def test_the_cut_keeps_exactly_what_a_512_token_prompt_gives(clip):
    long_instruction = " ".join(f"word{i}" for i in range(2000))
    cut, _, _ = encode(clip, long_instruction)
    tokens = clip.tokenize(prompts.build_prompt(long_instruction))["t5xxl"][0]
    by_hand = clip.encode_from_tokens_scheduled({"l": clip.tokenize(prompts.build_prompt(long_instruction))["l"],
                                                 "t5xxl": [tokens[:T5_TOKEN_LIMIT - 1] + [(1, 1.0)]]},
                                                add_dict={"guidance": 50.0})
    assert (cut[0][0] - by_hand[0][0]).abs().max() == 0
