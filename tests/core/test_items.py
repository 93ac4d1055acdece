"""Batch items for the headless runner: manifests (JSONL, CSV, folder), the image checks before upload, the
ledger that makes a run resumable, atomic writes and the content key. Real files in tmp_path, nothing mocked
except where a failure has to be forced."""
from __future__ import annotations

import csv
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from comfyui_icedit.runner import items, settings

SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


# -- helpers ----------------------------------------------------------------------------------------------------
def _picture(size=(16, 12), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def make_image(path, fmt=None, size=(16, 12), seed=0, **save) -> str:
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _picture(size, seed).save(path, format=fmt, **save)
    return path


def write_text(path, text: str, encoding="utf-8") -> str:
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as handle:
        handle.write(text)
    return path


def write_csv(path, header, rows) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def jsonl(*rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def summary(item_list):
    return [(i.id, i.image, i.instruction, i.values.get("seed"), i.values.get("steps"), i.workflow, i.error)
            for i in item_list]


def errors(item_list):
    return [i.error for i in item_list]


# -- the three forms of a batch ---------------------------------------------------------------------------------
@pytest.fixture
def picture_folder(tmp_path):
    folder = tmp_path / "pics"
    make_image(folder / "cat.png", seed=1)
    make_image(folder / "dog.jpg", seed=2)
    make_image(folder / "sky.webp", seed=3)
    write_text(folder / "cat.txt", "make the cat orange\n")
    write_text(folder / "dog.txt", "  give the dog a hat  ")
    write_text(folder / "sky.txt", "a sunset sky")
    write_text(folder / "notes.md", "not an image, ignored")
    return folder


def test_jsonl_csv_and_folder_give_the_same_items(tmp_path, picture_folder):
    pairs = [("pics/cat.png", "make the cat orange"), ("pics/dog.jpg", "give the dog a hat"),
             ("pics/sky.webp", "a sunset sky")]
    manifest = write_text(tmp_path / "edits.jsonl", jsonl(*[{"image": i, "instruction": t} for i, t in pairs]))
    table = write_csv(tmp_path / "edits.csv", ["image", "instruction"], pairs)

    from_jsonl = items.read_batch(manifest)
    from_csv = items.read_batch(table)
    from_folder = items.read_batch(str(picture_folder))

    expected = [(stem, str(picture_folder / name), text, None, None, None, None)
                for stem, name, text in [("cat", "cat.png", "make the cat orange"),
                                         ("dog", "dog.jpg", "give the dog a hat"),
                                         ("sky", "sky.webp", "a sunset sky")]]
    assert summary(from_jsonl) == expected
    assert summary(from_csv) == expected
    assert summary(from_folder) == expected
    assert [i.where for i in from_jsonl] == ["edits.jsonl line 1", "edits.jsonl line 2", "edits.jsonl line 3"]
    assert [i.where for i in from_csv] == ["edits.csv line 2", "edits.csv line 3", "edits.csv line 4"]
    assert [i.where for i in from_folder] == ["pics/cat.png", "pics/dog.jpg", "pics/sky.webp"]


def test_all_columns_are_read_from_jsonl_and_csv_alike(tmp_path):
    make_image(tmp_path / "a.png")
    row = {"image": "a.png", "instruction": "paint it blue", "id": "first", "seed": 42, "steps": 12,
           "workflow": "early_filter"}
    from_jsonl = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(row)))
    from_csv = items.read_batch(write_csv(tmp_path / "m.csv", list(row), [list(row.values())]))
    expected = [("first", str(tmp_path / "a.png"), "paint it blue", 42, 12, "early_filter", None)]
    assert summary(from_jsonl) == expected
    assert summary(from_csv) == expected


def test_relative_paths_resolve_against_the_manifest_folder_not_the_working_directory(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    make_image(elsewhere / "pics" / "a.png")  # a decoy with the same relative path, beside the cwd
    project = tmp_path / "project"
    inside = make_image(project / "batch" / "pics" / "a.png")
    above = make_image(project / "shared.png")
    absolute = make_image(tmp_path / "abs" / "c.png")
    home = tmp_path / "home"
    in_home = make_image(home / "h.png")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)

    rows = [{"image": "pics/a.png", "instruction": "x"}, {"image": "../shared.png", "instruction": "x"},
            {"image": absolute, "instruction": "x"}, {"image": "~/h.png", "instruction": "x"}]
    got = items.read_batch(write_text(project / "batch" / "m.jsonl", jsonl(*rows)))
    assert [i.image for i in got] == [inside, above, absolute, in_home]
    assert errors(got) == [None] * 4

    table = write_csv(project / "batch" / "m.csv", ["image", "instruction"], [[r["image"], "x"] for r in rows])
    assert [i.image for i in items.read_batch(table)] == [inside, above, absolute, in_home]


def test_a_manifest_given_by_a_relative_path(tmp_path, monkeypatch):
    make_image(tmp_path / "sub" / "a.png")
    write_text(tmp_path / "sub" / "m.jsonl", jsonl({"image": "a.png", "instruction": "x"}))
    monkeypatch.chdir(tmp_path)
    [item] = items.read_batch("sub/m.jsonl")
    assert item.image == str(tmp_path / "sub" / "a.png")
    assert item.error is None


# -- line numbers in messages -----------------------------------------------------------------------------------
def test_jsonl_line_numbers_count_blank_and_comment_lines(tmp_path):
    make_image(tmp_path / "a.png")
    text = ("# a comment\n"
            "\n"
            + json.dumps({"image": "a.png", "instruction": "ok"}) + "\n"  # line 3
            + "   \n"
            + json.dumps({"image": "a.png", "instruction": "   "}) + "\n"  # line 5: empty instruction
            + "{not json\n"  # line 6
            + "[1, 2]\n"  # line 7: JSON, but not an object
            + "  # an indented comment\n"
            + json.dumps({"image": "missing.png", "instruction": "x"}) + "\n")  # line 9
    got = items.read_batch(write_text(tmp_path / "edits.jsonl", text))
    assert [i.where for i in got] == [f"edits.jsonl line {n}" for n in (3, 5, 6, 7, 9)]
    assert got[0].error is None
    assert got[1].error == "edits.jsonl line 5: the instruction is empty"
    assert got[2].error.startswith("edits.jsonl line 6: not a JSON object")
    assert got[3].error == "edits.jsonl line 7: not a JSON object"
    assert got[4].error == f"edits.jsonl line 9: no such image: {tmp_path / 'missing.png'}"


def test_csv_line_numbers_are_the_reader_line_numbers(tmp_path):
    make_image(tmp_path / "a.png")
    text = ('image,instruction\n'
            'a.png,first\n'  # line 2
            'a.png,"an instruction\nover two lines"\n'  # lines 3-4
            '\n'  # line 5, skipped by the reader
            'a.png,\n')  # line 6: empty instruction
    got = items.read_batch(write_text(tmp_path / "edits.csv", text))
    assert len(got) == 3
    assert [i.where for i in got] == ["edits.csv line 2", "edits.csv line 4", "edits.csv line 6"]
    assert got[1].instruction == "an instruction\nover two lines"
    assert errors(got) == [None, None, "edits.csv line 6: the instruction is empty"]


def test_a_csv_saved_by_excel_with_a_byte_order_mark(tmp_path):
    make_image(tmp_path / "a.png")
    path = write_text(tmp_path / "m.csv", "\ufeffimage,instruction\r\na.png,make it red\r\n")
    [item] = items.read_batch(path)
    assert (item.id, item.instruction, item.error) == ("a", "make it red", None)


def test_a_jsonl_with_a_byte_order_mark(tmp_path):
    make_image(tmp_path / "a.png")
    path = write_text(tmp_path / "m.jsonl", "\ufeff" + jsonl({"image": "a.png", "instruction": "x"}))
    [item] = items.read_batch(path)
    assert item.error is None


# -- bad rows become items with an error, never exceptions ------------------------------------------------------
def test_unknown_columns_are_named(tmp_path):
    make_image(tmp_path / "a.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"image": "a.png", "instruction": "x", "prompt": "y", "colour": "red"})))
    assert got[0].error.startswith("m.jsonl line 1: unknown columns ['colour', 'prompt']")

    table = write_csv(tmp_path / "m.csv", ["image", "instruction", "strength"], [["a.png", "x", "0.5"]])
    got = items.read_batch(table)
    assert got[0].error.startswith("m.csv line 2: unknown columns ['strength']")


def test_an_empty_value_in_an_unknown_csv_column_is_no_error(tmp_path):
    """A CSV cell left empty is as if the column were absent (spreadsheets keep stray header cells)."""
    make_image(tmp_path / "a.png")
    got = items.read_batch(write_csv(tmp_path / "m.csv", ["image", "instruction", "notes"],
                                     [["a.png", "x", ""], ["a.png", "x", "hello"]]))
    assert got[0].error is None
    assert "unknown columns ['notes']" in got[1].error


def test_a_csv_row_with_more_fields_than_columns_is_refused_not_cut_short(tmp_path):
    """An unquoted comma in an instruction splits it into an extra field; editing with half the instruction
    would be wrong without a word."""
    make_image(tmp_path / "a.png")
    table = write_text(tmp_path / "m.csv", "image,instruction\n"
                                           "a.png,make the sky red, then add a moon\n"
                                           'a.png,"make the sky red, then add a moon"\n')
    got = items.read_batch(table)
    assert got[0].error is not None and got[0].error.startswith("m.csv line 2: ")
    assert got[1].error is None
    assert got[1].instruction == "make the sky red, then add a moon"


def test_a_csv_without_the_needed_columns_is_refused_as_a_whole(tmp_path):
    with pytest.raises(items.ItemError, match="image and instruction"):
        items.read_batch(write_csv(tmp_path / "m.csv", ["picture", "instruction"], [["a.png", "x"]]))
    with pytest.raises(items.ItemError, match="image and instruction"):
        items.read_batch(write_text(tmp_path / "empty.csv", ""))


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n\n"])
def test_a_manifest_with_no_rows_is_refused(tmp_path, text):
    with pytest.raises(items.ItemError, match="no items"):
        items.read_batch(write_text(tmp_path / "m.jsonl", text))


def test_a_missing_manifest_is_refused(tmp_path):
    with pytest.raises(items.ItemError, match="no such file or folder"):
        items.read_batch(str(tmp_path / "nope.jsonl"))


def test_a_manifest_that_is_not_utf8_is_refused_as_an_item_error(tmp_path):
    """A Latin-1 CSV from an old spreadsheet: the runner reports ItemError; anything else is a traceback."""
    make_image(tmp_path / "a.png")
    path = write_text(tmp_path / "m.csv", "image,instruction\na.png,caf\u00e9 au lait\n", encoding="latin-1")
    with pytest.raises(items.ItemError, match="m.csv"):
        items.read_batch(path)


def test_rows_without_image_or_instruction(tmp_path):
    make_image(tmp_path / "a.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"instruction": "x"}, {"image": "", "instruction": "x"}, {"image": "a.png"},
        {"image": "a.png", "instruction": None}, {"image": "a.png", "instruction": " \t\n"},
        {"image": "gone.png", "instruction": "x"}, {"image": ".", "instruction": "x"})))
    assert errors(got) == ["m.jsonl line 1: no image given", "m.jsonl line 2: no image given",
                           "m.jsonl line 3: the instruction is empty", "m.jsonl line 4: the instruction is empty",
                           "m.jsonl line 5: the instruction is empty",
                           f"m.jsonl line 6: no such image: {tmp_path / 'gone.png'}",
                           f"m.jsonl line 7: no such image: {tmp_path}"]


def test_the_mask_column_is_refused_for_now_with_its_path_resolved(tmp_path):
    make_image(tmp_path / "a.png")
    [item] = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"image": "a.png", "instruction": "x", "mask": "masks/a.png"})))
    assert item.mask == str(tmp_path / "masks" / "a.png")
    assert item.error.startswith("m.jsonl line 1: the mask column is not used")


def test_the_first_problem_of_a_row_is_the_one_reported(tmp_path):
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"image": "gone.png", "instruction": "", "seed": -1, "extra": 1})))
    assert got[0].error.startswith("m.jsonl line 1: unknown columns ['extra']")


# -- seed and steps ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, message", [
    ("seed", -1, "seed = -1 is outside [0, 18446744073709551615]"),
    ("seed", 2 ** 64, f"seed = {2 ** 64} is outside [0, 18446744073709551615]"),
    ("seed", "abc", "seed = 'abc' is not a whole number"),
    ("seed", 1.5, "seed = 1.5 is not a whole number"),
    ("seed", "12 34", "seed = '12 34' is not a whole number"),
    ("steps", 0, "steps = 0 is outside [1, 10000]"),
    ("steps", 10001, "steps = 10001 is outside [1, 10000]"),
    ("steps", -3, "steps = -3 is outside [1, 10000]"),
    ("steps", "many", "steps = 'many' is not a whole number"),
    ("steps", "2.5", "steps = '2.5' is not a whole number"),
])
def test_bad_seed_or_steps(tmp_path, key, value, message):
    make_image(tmp_path / "a.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"image": "a.png", "instruction": "ok"}, {"image": "a.png", "instruction": "x", key: value})))
    assert got[0].error is None
    assert got[1].error == f"m.jsonl line 2: {message}"


@pytest.mark.parametrize("key, value, parsed", [
    ("seed", 0, 0), ("seed", "0", 0), ("seed", 2 ** 64 - 1, 2 ** 64 - 1), ("seed", " 7 ", 7),
    ("steps", 1, 1), ("steps", "10000", 10000), ("steps", 28, 28),
])
def test_good_seed_or_steps(tmp_path, key, value, parsed):
    make_image(tmp_path / "a.png")
    [item] = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl({"image": "a.png", "instruction": "x",
                                                                      key: value})))
    assert item.error is None
    assert item.values[key] == parsed
    assert type(item.values[key]) is int


def test_bad_seed_and_steps_in_a_csv(tmp_path):
    make_image(tmp_path / "a.png")
    got = items.read_batch(write_csv(tmp_path / "m.csv", ["image", "instruction", "seed", "steps"],
                                     [["a.png", "x", "", ""], ["a.png", "x", "seven", ""],
                                      ["a.png", "x", "1", "0"], ["a.png", "x", "3", "20"]]))
    assert errors(got) == [None, "m.csv line 3: seed = 'seven' is not a whole number",
                           "m.csv line 4: steps = 0 is outside [1, 10000]", None]
    assert (got[0].values, got[3].values) == ({}, {"seed": 3, "steps": 20})


# -- ids --------------------------------------------------------------------------------------------------------
def test_duplicate_explicit_ids(tmp_path):
    make_image(tmp_path / "a.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        *[{"image": "a.png", "instruction": "x", "id": "same"}] * 3, {"image": "a.png", "instruction": "x",
                                                                     "id": "other"})))
    assert errors(got) == [None, "m.jsonl line 2: id 'same' is used by an earlier row",
                           "m.jsonl line 3: id 'same' is used by an earlier row", None]
    ids = [i.id for i in got]
    assert ids[0] == "same" and ids[3] == "other"
    assert len(set(ids)) == 4  # a bad row is recorded in the ledger under its own id, not the good row's


def test_duplicate_ids_in_a_csv_name_their_lines(tmp_path):
    make_image(tmp_path / "a.png")
    got = items.read_batch(write_csv(tmp_path / "m.csv", ["id", "image", "instruction"],
                                     [["k", "a.png", "x"], ["j", "a.png", "x"], ["k", "a.png", "y"]]))
    assert errors(got) == [None, None, "m.csv line 4: id 'k' is used by an earlier row"]


def test_an_explicit_id_is_stripped_and_a_blank_one_is_derived(tmp_path):
    make_image(tmp_path / "photo.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"image": "photo.png", "instruction": "x", "id": "  spaced  "},
        {"image": "photo.png", "instruction": "x", "id": "   "},
        {"image": "photo.png", "instruction": "x", "id": 17})))
    assert [i.id for i in got] == ["spaced", "photo", "17"]
    assert errors(got) == [None, None, None]


def test_derived_ids_come_from_the_file_stem_and_are_made_unique(tmp_path):
    for folder in ("a", "b", "c"):
        make_image(tmp_path / folder / "photo.png")
    make_image(tmp_path / "c" / "photo.jpg")
    make_image(tmp_path / "shot.final.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"image": "a/photo.png", "instruction": "x"}, {"image": "b/photo.png", "instruction": "x"},
        {"image": "c/photo.png", "instruction": "x"}, {"image": "c/photo.jpg", "instruction": "x"},
        {"image": "shot.final.png", "instruction": "x"})))
    assert [i.id for i in got] == ["photo", "photo-2", "photo-3", "photo-4", "shot.final"]
    assert errors(got) == [None] * 5


def test_a_derived_id_steps_around_an_explicit_one(tmp_path):
    make_image(tmp_path / "photo.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"image": "photo.png", "instruction": "x", "id": "photo-2"},
        {"image": "photo.png", "instruction": "x"}, {"image": "photo.png", "instruction": "x"})))
    assert [i.id for i in got] == ["photo-2", "photo", "photo-3"]
    assert errors(got) == [None] * 3


def test_an_explicit_id_taken_by_an_earlier_derived_one_is_an_error(tmp_path):
    make_image(tmp_path / "photo.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl(
        {"image": "photo.png", "instruction": "x"}, {"image": "photo.png", "instruction": "x", "id": "photo"})))
    assert got[0].error is None
    assert got[1].error == "m.jsonl line 2: id 'photo' is used by an earlier row"
    assert got[1].id != "photo"


@pytest.mark.parametrize("bad_id", ["../evil", "a/b", "a\\b", ".", "..", "two words", "tab\there", "x:y",
                                    "semi;colon", "star*", "new\nline"])
def test_unsafe_explicit_ids_are_refused(tmp_path, bad_id):
    make_image(tmp_path / "a.png")
    got = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl({"image": "a.png", "instruction": "x",
                                                                   "id": bad_id})))
    assert got[0].error is not None
    assert "cannot be a file name" in got[0].error
    assert got[0].error.startswith("m.jsonl line 1: ")


@pytest.mark.parametrize("good_id", ["a", "A_1", "shot.final", "x-2", "0042", "caf\u00e9"])
def test_safe_explicit_ids_are_kept(tmp_path, good_id):
    make_image(tmp_path / "a.png")
    [item] = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl({"image": "a.png", "instruction": "x",
                                                                      "id": good_id})))
    assert (item.id, item.error) == (good_id, None)


def test_no_item_with_an_unsafe_id_is_ever_ready_to_edit(tmp_path):
    """A derived id comes from a file name that may hold anything; the id names output files, so an item
    either has a safe id or an error."""
    folder = tmp_path / "odd"
    for name in ("my photo.png", "semi;colon.png", "fine.png"):
        make_image(folder / name)
        write_text(folder / (os.path.splitext(name)[0] + ".txt"), "x")
    got = items.read_batch(str(folder))
    assert len(got) == 3
    for item in got:
        assert item.error is not None or SAFE_ID.match(item.id) or item.id.isalnum(), item
    assert [i.error for i in got if i.id == "fine"] == [None]
    # a file name with spaces or punctuation gives a usable id rather than an error
    assert sorted((i.id, i.error) for i in got) == [("fine", None), ("my_photo", None), ("semi_colon", None)]


def test_a_folder_with_photo_png_and_photo_jpg_edits_both_with_one_sidecar(tmp_path):
    folder = tmp_path / "both"
    make_image(folder / "photo.png", seed=1)
    make_image(folder / "photo.jpg", seed=2)
    write_text(folder / "photo.txt", "make it red")
    got = items.read_batch(str(folder))
    assert [(i.id, os.path.basename(i.image), i.instruction, i.error) for i in got] == [
        ("photo", "photo.jpg", "make it red", None), ("photo-2", "photo.png", "make it red", None)]


def test_ids_are_unique_even_among_bad_rows(tmp_path):
    """Two images with the same stem and no sidecar: both are bad rows, recorded in the ledger under their ids,
    so the ids must differ."""
    folder = tmp_path / "f"
    make_image(folder / "photo.png")
    make_image(folder / "photo.jpg")
    got = items.read_batch(str(folder))
    assert len(got) == 2
    assert all(i.error and "no instruction file photo.txt" in i.error for i in got)
    assert len({i.id for i in got}) == 2


# -- folders ----------------------------------------------------------------------------------------------------
def test_a_folder_reads_sorted_images_and_skips_other_files(tmp_path):
    folder = tmp_path / "in"
    for name in ("b.PNG", "a.jpeg", "c.tiff", "d.bmp", "e.gif"):
        make_image(folder / name)
        write_text(folder / (os.path.splitext(name)[0] + ".txt"), f"edit {name}")
    write_text(folder / "readme.json", "{}")
    os.makedirs(folder / "sub")
    got = items.read_batch(str(folder))
    assert [i.id for i in got] == ["a", "b", "c", "d", "e"]
    assert [i.instruction for i in got] == ["edit a.jpeg", "edit b.PNG", "edit c.tiff", "edit d.bmp", "edit e.gif"]
    assert errors(got) == [None] * 5


def test_a_folder_image_without_a_sidecar_is_a_bad_row(tmp_path):
    folder = tmp_path / "in"
    make_image(folder / "a.png")
    make_image(folder / "b.png")
    write_text(folder / "a.txt", "x")
    got = items.read_batch(str(folder))
    assert errors(got) == [None, "in/b.png: no instruction file b.txt beside it"]
    assert got[1].id == "b"


def test_a_folder_with_an_empty_sidecar(tmp_path):
    folder = tmp_path / "in"
    make_image(folder / "a.png")
    write_text(folder / "a.txt", "  \n\n")
    assert errors(items.read_batch(str(folder))) == ["in/a.png: the instruction is empty"]


def test_a_sidecar_with_a_byte_order_mark(tmp_path):
    """Windows Notepad's UTF-8 starts with a byte order mark; it is no part of the instruction."""
    folder = tmp_path / "in"
    make_image(folder / "a.png")
    write_text(folder / "a.txt", "\ufeffmake it snow\r\n")
    [item] = items.read_batch(str(folder))
    assert item.instruction == "make it snow"


def test_a_sidecar_that_is_not_utf8_is_a_bad_row_not_an_exception(tmp_path):
    folder = tmp_path / "in"
    make_image(folder / "a.png")
    make_image(folder / "b.png")
    write_text(folder / "a.txt", "ajoute un caf\u00e9", encoding="latin-1")
    write_text(folder / "b.txt", "fine")
    got = items.read_batch(str(folder))
    assert got[0].error is not None and got[0].error.startswith("in/a.png: ")
    assert "a.txt" in got[0].error
    assert got[1].error is None


def test_a_folder_with_no_images_is_refused(tmp_path):
    folder = tmp_path / "empty"
    write_text(folder / "a.txt", "x")
    with pytest.raises(items.ItemError, match="no images"):
        items.read_batch(str(folder))


def test_a_folder_given_with_a_trailing_slash(tmp_path):
    folder = tmp_path / "in"
    make_image(folder / "a.png")
    [item] = items.read_batch(str(folder) + os.sep)
    assert item.where == "in/a.png"
    assert item.image == str(folder / "a.png")


# -- --edit pairs -----------------------------------------------------------------------------------------------
def test_edit_pairs(tmp_path, monkeypatch):
    make_image(tmp_path / "x" / "photo.png")
    make_image(tmp_path / "y" / "photo.png")
    absolute = make_image(tmp_path / "z" / "other.jpg")
    monkeypatch.chdir(tmp_path)
    got = items.from_edit_pairs([("x/photo.png", " make it red "), ("y/photo.png", "add a hat"),
                                 (absolute, "night"), ("missing.png", "x"), ("x/photo.png", "")])
    assert [i.id for i in got][:3] == ["photo", "photo-2", "other"]
    assert [i.image for i in got][:3] == [str(tmp_path / "x" / "photo.png"), str(tmp_path / "y" / "photo.png"),
                                          absolute]
    assert got[0].instruction == "make it red"
    assert [i.where for i in got] == [f"--edit #{n}" for n in range(1, 6)]
    assert errors(got) == [None, None, None, f"--edit #4: no such image: {tmp_path / 'missing.png'}",
                           "--edit #5: the instruction is empty"]
    assert len({i.id for i in got}) == 5


def test_edit_pairs_and_a_manifest_agree(tmp_path, monkeypatch):
    make_image(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    from_pairs = items.from_edit_pairs([("a.png", "x")])
    from_manifest = items.read_batch(write_text(tmp_path / "m.jsonl", jsonl({"image": "a.png", "instruction": "x"})))
    assert summary(from_pairs) == summary(from_manifest)


# -- settings ---------------------------------------------------------------------------------------------------
RUN = {"seed": 5, "candidates": 4, "early_steps": 6}  # what a run's options gave; the rest are the defaults
IMAGE_INPUTS = {"image", "instruction", "seed", "steps", "panel_width"}  # what the basic workflow declares


def key_of(item, run=RUN, smoke=False, declared=IMAGE_INPUTS, workflow="basic"):
    resolved = settings.resolve(smoke, run, item.values)
    return settings.key_settings(item.workflow or workflow, item.instruction, resolved, declared, {})


def test_settings_take_the_defaults_only_where_the_row_is_silent():
    item = items.Item(id="a", image="/a.png", instruction="x", where="w")
    assert key_of(item) == {"seed": 5, "steps": 28, "workflow": "basic", "panel_width": 512,
                            "candidates": 4, "early_steps": 6, "instruction": "x"}
    item = items.Item(id="a", image="/a.png", instruction="y", where="w", values={"seed": 0, "steps": 1},
                      workflow="early_filter")
    assert key_of(item) == {"seed": 0, "steps": 1, "workflow": "early_filter", "panel_width": 512,
                            "candidates": 4, "early_steps": 6, "instruction": "y"}
    assert key_of(items.Item(id="a", image="", instruction="", where=""), run={})["candidates"] is None
    assert key_of(items.Item(id="a", image="", instruction="", where=""), run={}, smoke=True)["candidates"] == 3


def test_a_video_setting_enters_the_key_only_for_a_workflow_that_declares_it():
    item = items.Item(id="a", image="/a.mp4", instruction="x", where="w")
    assert "video_noise" not in key_of(item, run={"video_noise": "shared"})
    declared = {"video", "instruction", "seed", "steps", "panel_width", "video_noise", "frames_per_batch"}
    keyed = key_of(item, run={"video_noise": "shared"}, declared=declared, workflow="video")
    assert (keyed["video_noise"], keyed["frames_per_batch"]) == ("shared", None)


# Keys the runner wrote before the settings were declared in one table (computed by that code, f31afb4): a ledger
# of those days must still say "done" for the same image and settings, or every resume would redo everything.
OLD_KEYS = [
    ({}, False, "basic", IMAGE_INPUTS, "28d14368dc95adf44b113e2ebf73fa9e"),
    ({"seed": 7}, True, "early_filter", IMAGE_INPUTS | {"candidates", "early_steps"},
     "a50440dd95097b0c00dc623bd646c431"),
    ({}, True, "video", {"video", "instruction", "seed", "steps", "panel_width", "video_noise", "frames_per_batch"},
     "3eb9b07273f6e83b9648a57d46ef8e08"),
    ({"video_noise": "shared", "frames_per_batch": 2}, False, "video",
     {"video", "instruction", "seed", "steps", "panel_width", "video_noise", "frames_per_batch"},
     "a01e188a7158e3b6c1924dde47c6dccb"),
]


@pytest.mark.parametrize("values, smoke, workflow, declared, old_key", OLD_KEYS)
def test_the_key_is_the_one_earlier_runs_wrote(values, smoke, workflow, declared, old_key):
    run = {"seed": 42, **{name: value for name, value in values.items() if name != "seed"}}
    item = items.Item(id="a", image="/a.png", instruction="make it red", where="w", workflow=workflow,
                      values={"seed": values["seed"]} if "seed" in values else {})
    keyed = settings.key_settings(workflow, item.instruction, settings.resolve(smoke, run, item.values), declared, {})
    assert items.content_key(b"same picture bytes", keyed) == old_key


# -- images before upload ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, fmt, extension, save", [
    ("a.png", "PNG", ".png", {}),
    ("a.jpg", "JPEG", ".jpg", {"quality": 90}),
    ("a.jpeg", "JPEG", ".jpg", {}),
    ("a.webp", "WEBP", ".webp", {}),
    ("a.bmp", "BMP", ".bmp", {}),
    ("a.tif", "TIFF", ".tiff", {}),
    ("a.gif", "GIF", ".gif", {}),
    ("misnamed.png", "JPEG", ".jpg", {}),  # the extension follows the content, not the name
])
def test_ordinary_8bit_images_go_unchanged(tmp_path, name, fmt, extension, save):
    path = make_image(tmp_path / name, fmt=fmt, **save)
    with open(path, "rb") as handle:
        original = handle.read()
    data, ext = items.upload_bytes(path)
    assert data == original
    assert ext == extension


def test_8bit_greyscale_rgba_and_palette_pngs_go_unchanged(tmp_path):
    picture = _picture()
    for mode in ("L", "LA", "RGBA", "P", "1"):
        path = str(tmp_path / f"{mode}.png")
        picture.convert(mode).save(path)
        with open(path, "rb") as handle:
            assert items.upload_bytes(path) == (handle.read(), ".png"), mode


def test_a_jpeg_with_an_exif_orientation_goes_unchanged(tmp_path):
    """LoadImage applies the orientation itself; turning it here too would turn it twice."""
    exif = Image.Exif()
    exif[0x0112] = 6
    path = make_image(tmp_path / "rotated.jpg", fmt="JPEG", exif=exif)
    with open(path, "rb") as handle:
        assert items.upload_bytes(path) == (handle.read(), ".jpg")


def test_an_empty_file_is_refused(tmp_path):
    path = write_text(tmp_path / "empty.png", "")
    with pytest.raises(items.ItemError, match=r"empty \(0 bytes\)") as caught:
        items.upload_bytes(path)
    assert path in str(caught.value)


def test_a_text_file_named_png_is_refused(tmp_path):
    path = write_text(tmp_path / "fake.png", "this is not a picture\n" * 20)
    with pytest.raises(items.ItemError, match="not an image file") as caught:
        items.upload_bytes(path)
    assert path in str(caught.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(items.ItemError, match="cannot read it"):
        items.upload_bytes(str(tmp_path / "gone.png"))


@pytest.mark.parametrize("fraction", [0.15, 0.5, 0.9])
def test_a_truncated_png_is_refused(tmp_path, fraction):
    whole = make_image(tmp_path / "whole.png", size=(128, 96))
    with open(whole, "rb") as handle:
        data = handle.read()
    cut = data[:int(len(data) * fraction)]
    path = tmp_path / "cut.png"
    path.write_bytes(cut)
    with Image.open(io.BytesIO(cut)) as header_only:  # the header still reads: the damage shows only on decoding
        assert header_only.size == (128, 96)
    with pytest.raises(items.ItemError, match="damaged or truncated") as caught:
        items.upload_bytes(str(path))
    assert str(path) in str(caught.value)


def test_a_truncated_jpeg_is_refused(tmp_path):
    whole = make_image(tmp_path / "whole.jpg", fmt="JPEG", size=(128, 96))
    with open(whole, "rb") as handle:
        data = handle.read()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(items.ItemError, match="damaged or truncated"):
        items.upload_bytes(str(path))


def test_a_png_with_a_broken_checksum_is_refused(tmp_path):
    whole = make_image(tmp_path / "whole.png", size=(64, 48))
    with open(whole, "rb") as handle:
        data = bytearray(handle.read())
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # a flipped byte inside the compressed rows
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(data))
    with pytest.raises(items.ItemError, match="damaged or truncated"):
        items.upload_bytes(str(path))


def test_an_animated_gif_is_refused(tmp_path):
    frames = [_picture(seed=n).convert("P") for n in range(3)]
    path = str(tmp_path / "anim.gif")
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(items.ItemError, match="animated image with 3 frames") as caught:
        items.upload_bytes(path)
    assert path in str(caught.value)


def test_an_animated_png_is_refused(tmp_path):
    path = str(tmp_path / "anim.png")
    _picture(seed=1).save(path, save_all=True, append_images=[_picture(seed=2)])
    with pytest.raises(items.ItemError, match="animated image with 2 frames"):
        items.upload_bytes(path)


def test_a_camera_mpo_jpeg_is_one_picture(tmp_path):
    """Phones write JPEGs with a second, hidden image (MPO); ComfyUI's LoadImage reads only the first, so this is
    not an animation."""
    path = str(tmp_path / "phone.jpg")
    _picture(seed=1).save(path, format="MPO", save_all=True, append_images=[_picture(seed=2)])
    with Image.open(path) as opened:
        assert (opened.format, opened.n_frames) == ("MPO", 2)
    data, extension = items.upload_bytes(path)
    with open(path, "rb") as handle:
        assert data == handle.read()
    assert extension == ".jpg"


SIXTEEN_BIT_VALUES = [0, 1, 128, 129, 255, 256, 257, 385, 386, 1000, 32767, 32768, 40000, 65279, 65534, 65535]


def _expected_8bit(values) -> np.ndarray:
    return np.array([round(v / 65535 * 255) for v in np.asarray(values).ravel()],
                    dtype=np.uint8).reshape(np.shape(values))


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_16bit_png_becomes_correct_8bit_rgb(tmp_path):
    values = np.array(SIXTEEN_BIT_VALUES, dtype=np.uint16).reshape(2, 8)
    path = str(tmp_path / "deep.png")
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode == "I;16"  # the file is what the test means it to be
    data, extension = items.upload_bytes(path)
    assert extension == ".png"
    out = _decoded(data)
    assert out.format == "PNG" and out.mode == "RGB" and out.size == (8, 2)
    pixels = np.asarray(out)
    expected = _expected_8bit(values)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[:, :, channel], expected)


def test_a_dark_16bit_png_stays_dark(tmp_path):
    """A 16-bit file whose values all happen to be under 256 is nearly black, not an 8-bit picture."""
    values = np.array([[0, 50, 128, 129], [200, 254, 255, 255]], dtype=np.uint16)
    path = str(tmp_path / "dark.png")
    Image.fromarray(values).save(path)
    pixels = np.asarray(_decoded(items.upload_bytes(path)[0]))
    np.testing.assert_array_equal(pixels[:, :, 0], _expected_8bit(values))
    assert pixels.max() == 1


def test_a_16bit_png_written_in_mode_i_16_directly(tmp_path):
    values = [0, 65535, 1000, 30000, 257, 12345]
    image = Image.new("I;16", (3, 2))
    image.putdata(values)
    path = str(tmp_path / "direct.png")
    image.save(path)
    pixels = np.asarray(_decoded(items.upload_bytes(path)[0]))
    np.testing.assert_array_equal(pixels[:, :, 1], _expected_8bit(np.array(values).reshape(2, 3)))


def test_a_mode_i_image_holding_16_bit_values_is_converted_as_16_bit(tmp_path):
    values = np.array([[0, 300, 65535], [1, 40000, 20000]], dtype=np.int32)
    path = str(tmp_path / "i.tif")
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode == "I"
    pixels = np.asarray(_decoded(items.upload_bytes(path)[0]))
    np.testing.assert_array_equal(pixels[:, :, 2], _expected_8bit(values))


def test_a_16bit_tiff_is_converted(tmp_path):
    values = np.array([[0, 65535, 4242], [32768, 9999, 1]], dtype=np.uint16)
    path = str(tmp_path / "deep.tif")
    Image.fromarray(values).save(path)
    data, extension = items.upload_bytes(path)
    assert extension == ".png"
    np.testing.assert_array_equal(np.asarray(_decoded(data))[:, :, 0], _expected_8bit(values))


def test_a_16bit_png_with_an_exif_orientation_is_turned_upright(tmp_path):
    """The converted PNG carries no EXIF, so the orientation is applied here."""
    values = (np.arange(6, dtype=np.uint16).reshape(2, 3) + 1) * 10000
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = str(tmp_path / "rotated16.png")
    Image.fromarray(values).save(path, exif=exif)
    out = _decoded(items.upload_bytes(path)[0])
    assert out.size == (2, 3)
    upright = np.rot90(values, k=-1)
    np.testing.assert_array_equal(np.asarray(out)[:, :, 0], _expected_8bit(upright))


# -- content key ------------------------------------------------------------------------------------------------
SETTINGS = {"seed": 5, "steps": 28, "workflow": "basic", "panel_width": 512, "candidates": None,
            "early_steps": None, "instruction": "make it red"}


def test_the_content_key_is_stable_and_ignores_key_order():
    image = b"\x89PNG some bytes"
    key = items.content_key(image, SETTINGS)
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert items.content_key(bytes(image), dict(SETTINGS)) == key
    assert items.content_key(image, dict(reversed(list(SETTINGS.items())))) == key


@pytest.mark.parametrize("name, value", [
    ("seed", 6), ("seed", "5"), ("steps", 27), ("workflow", "early_filter"), ("panel_width", 1024),
    ("candidates", 4), ("early_steps", 6), ("instruction", "make it red "), ("instruction", "Make it red"),
])
def test_the_content_key_changes_with_any_setting(name, value):
    image = b"\x89PNG some bytes"
    assert items.content_key(image, {**SETTINGS, name: value}) != items.content_key(image, SETTINGS)


def test_the_content_key_changes_with_any_byte():
    image = bytes(range(256)) * 4
    key = items.content_key(image, SETTINGS)
    keys = {key}
    for position in (0, 1, 511, len(image) - 1):
        changed = bytearray(image)
        changed[position] ^= 0x01
        keys.add(items.content_key(bytes(changed), SETTINGS))
    keys.add(items.content_key(image + b"\x00", SETTINGS))
    keys.add(items.content_key(image[:-1], SETTINGS))
    assert len(keys) == 7


def test_the_content_key_of_an_item_follows_its_settings(tmp_path):
    image = b"same picture"
    base = items.Item(id="a", image="/a.png", instruction="x", where="w")
    other_seed = items.Item(id="a", image="/a.png", instruction="x", where="w", values={"seed": 6})
    default_seed = items.Item(id="a", image="/a.png", instruction="x", where="w", values={"seed": 5})
    key = items.content_key(image, key_of(base))
    assert items.content_key(image, key_of(default_seed)) == key  # an explicit default is the default
    assert items.content_key(image, key_of(other_seed)) != key
    assert items.content_key(image, key_of(base, run={**RUN, "steps": 29})) != key


# -- ledger -----------------------------------------------------------------------------------------------------
def _entry(item_id, status="ok", key="k1", **more):
    return {"id": item_id, "status": status, "key": key, "outputs": [f"{item_id}_edited.png"], **more}


def _ledger_lines(folder):
    with open(os.path.join(folder, "results.jsonl"), encoding="utf-8") as handle:
        return handle.read().splitlines()


def test_a_new_ledger_is_empty_and_writes_nothing(tmp_path):
    ledger = items.Ledger(str(tmp_path))
    assert ledger.state == {}
    assert ledger.path == str(tmp_path / "results.jsonl")
    assert os.listdir(tmp_path) == []
    assert not ledger.done("a", "k1") and not ledger.conflict("a", "k1")


def test_the_ledger_round_trip(tmp_path):
    ledger = items.Ledger(str(tmp_path))
    ledger.record(_entry("a", instruction="rouge \u00e9t\u00e9 \u7ea2"))
    ledger.record(_entry("b", status="failed", key="k2", error="boom"))
    assert len(_ledger_lines(tmp_path)) == 2
    again = items.Ledger(str(tmp_path))
    assert again.state == ledger.state
    assert again.state["a"]["instruction"] == "rouge \u00e9t\u00e9 \u7ea2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", again.state["a"]["time"])
    assert again.done("a", "k1") and not again.done("a", "other")
    assert again.conflict("a", "other") and not again.conflict("a", "k1")
    assert not again.done("b", "k2") and not again.conflict("b", "k2")  # a failure is neither done nor in the way
    assert not again.done("c", "k1") and not again.conflict("c", "k1")


def test_the_last_line_for_an_id_wins(tmp_path):
    ledger = items.Ledger(str(tmp_path))
    ledger.record(_entry("a", status="failed", key="k1"))
    ledger.record(_entry("b", status="ok", key="k1"))
    ledger.record(_entry("a", status="failed", key="k1"))
    ledger.record(_entry("a", status="ok", key="k2"))
    ledger.record(_entry("b", status="failed", key="k3"))
    ledger.record(_entry("c", status="ok", key="k4"))
    for view in (ledger, items.Ledger(str(tmp_path))):
        assert view.state["a"]["status"] == "ok" and view.state["a"]["key"] == "k2"
        assert view.state["b"]["status"] == "failed"
        assert view.done("a", "k2") and not view.done("a", "k1")
        assert not view.done("b", "k1")  # a later failure replaces the earlier success
        assert view.done("c", "k4")
    assert len(_ledger_lines(tmp_path)) == 6  # appended, never rewritten


def test_the_ledger_keeps_a_record_the_caller_goes_on_changing(tmp_path):
    ledger = items.Ledger(str(tmp_path))
    entry = _entry("a")
    ledger.record(entry)
    entry["status"] = "failed"
    assert items.Ledger(str(tmp_path)).state["a"]["status"] == "ok"
    assert "time" not in entry


def test_blank_lines_in_the_ledger_are_skipped(tmp_path):
    write_text(tmp_path / "results.jsonl", "\n" + json.dumps(_entry("a")) + "\n\n" + json.dumps(_entry("b")) + "\n")
    assert sorted(items.Ledger(str(tmp_path)).state) == ["a", "b"]


def test_a_cut_off_last_line_is_tolerated(tmp_path):
    whole = json.dumps(_entry("a")) + "\n" + json.dumps(_entry("b", status="failed")) + "\n"
    cut = json.dumps(_entry("c"))[:17]
    write_text(tmp_path / "results.jsonl", whole + cut)
    ledger = items.Ledger(str(tmp_path))
    assert sorted(ledger.state) == ["a", "b"]


def test_a_cut_off_first_and_only_line_is_tolerated(tmp_path):
    """A run killed while it wrote its first record."""
    write_text(tmp_path / "results.jsonl", json.dumps(_entry("a"))[:25])
    ledger = items.Ledger(str(tmp_path))
    assert ledger.state == {}


def test_a_line_cut_inside_a_multibyte_character_is_tolerated(tmp_path):
    good = json.dumps(_entry("a"), ensure_ascii=False) + "\n"
    last = json.dumps(_entry("b", instruction="\u7ea2\u8272\u7684\u5929\u7a7a"), ensure_ascii=False).encode()
    cut_at = last.index("\u7ea2".encode()) + 1  # one byte into a three-byte character
    (tmp_path / "results.jsonl").write_bytes(good.encode() + last[:cut_at])
    assert sorted(items.Ledger(str(tmp_path)).state) == ["a"]


def test_a_run_goes_on_after_a_cut_off_line_and_the_next_run_reads_it_all(tmp_path):
    """The cut-off line must not swallow the next record, nor end up in the middle of the file."""
    write_text(tmp_path / "results.jsonl", json.dumps(_entry("a")) + "\n" + json.dumps(_entry("b"))[:20])
    resumed = items.Ledger(str(tmp_path))
    resumed.record(_entry("b", key="kb"))
    resumed.record(_entry("c", key="kc"))
    third = items.Ledger(str(tmp_path))
    assert sorted(third.state) == ["a", "b", "c"]
    assert third.done("b", "kb") and third.done("c", "kc")
    for line in _ledger_lines(tmp_path):
        json.loads(line)


@pytest.mark.parametrize("damage", ["{not json", '{"id": "x", "stat', "garbage"])
def test_a_damaged_line_in_the_middle_is_an_error(tmp_path, damage):
    write_text(tmp_path / "results.jsonl",
               json.dumps(_entry("a")) + "\n" + damage + "\n" + json.dumps(_entry("b")) + "\n")
    with pytest.raises(items.ItemError, match=r"line 2 is not JSON; the ledger is damaged"):
        items.Ledger(str(tmp_path))


def test_a_damaged_first_line_followed_by_more_is_an_error(tmp_path):
    write_text(tmp_path / "results.jsonl", "oops\n" + json.dumps(_entry("a")) + "\n")
    with pytest.raises(items.ItemError, match="line 1 is not JSON"):
        items.Ledger(str(tmp_path))


@pytest.mark.parametrize("line", ['"a string"', "[1, 2]", '{"status": "ok"}', '{"id": "a"}'])
def test_a_json_line_that_is_no_ledger_entry_is_an_error(tmp_path, line):
    write_text(tmp_path / "results.jsonl", json.dumps(_entry("a")) + "\n" + line + "\n")
    with pytest.raises(items.ItemError, match="line 2"):
        items.Ledger(str(tmp_path))


# -- atomic writes ----------------------------------------------------------------------------------------------
def test_write_atomically_leaves_only_the_target(tmp_path):
    target = str(tmp_path / "a_edited.png")
    items.write_atomically(target, b"first")
    assert os.listdir(tmp_path) == ["a_edited.png"]
    items.write_atomically(target, b"second, longer")
    assert os.listdir(tmp_path) == ["a_edited.png"]
    with open(target, "rb") as handle:
        assert handle.read() == b"second, longer"


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "a_edited.png"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        items.write_atomically(str(target), "text, not bytes")
    assert os.listdir(tmp_path) == ["a_edited.png"]
    assert target.read_bytes() == b"old"


def test_a_failed_rename_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "a_edited.png"

    def refuse(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(items.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        items.write_atomically(str(target), b"new")
    assert os.listdir(tmp_path) == []


def test_an_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "a_edited.png"
    target.write_bytes(b"old")
    seen = []

    def interrupt(fd):
        seen.append(sorted(os.listdir(tmp_path)))
        raise KeyboardInterrupt

    monkeypatch.setattr(items.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        items.write_atomically(str(target), b"new data")
    assert len(seen[0]) == 2  # the temp file did exist beside the target...
    assert os.listdir(tmp_path) == ["a_edited.png"]  # ...and is gone
    assert target.read_bytes() == b"old"


def test_write_atomically_into_a_missing_folder_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        items.write_atomically(str(tmp_path / "nope" / "a.png"), b"x")
    assert os.listdir(tmp_path) == []
