"""What a batch is made of: items read from `--edit` pairs, a JSONL or CSV manifest, or a folder of images with
sidecar instructions; each image checked and made ready for upload; the typed path of one item through a run
(Job: planned once; EditRequest: what a worker gets; Outcome: what it returns); and the ledger (results.jsonl),
the only writer of its lines, that makes a run resumable. Stdlib + Pillow (and PyAV, through video.py, for clips).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import time

from . import settings as settinglib, video

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
VIDEO_WORKFLOW = "video"  # the shipped workflow a clip goes to when --workflow takes no video (kontext_video does)
MANIFEST_COLUMNS = ("image", "instruction", "id", "mask", "workflow",
                    *(setting.name for setting in settinglib.SETTINGS if setting.manifest))
MAX_STEPS = settinglib.MAX_STEPS
# An id's longest file is `<id>_turns_00001_.png.partial-<pid>` (a multi-turn run's turns, while written): 200
# UTF-8 bytes of id leave room for that suffix (and a 6-digit counter, a 7-digit pid) in a 255-byte file name.
MAX_ID_BYTES = 200


class ItemError(ValueError):
    """A row that cannot be edited (missing file, empty instruction, unreadable image); names where it came from."""


@dataclasses.dataclass
class Item:
    id: str
    image: str  # absolute path
    instruction: str
    where: str  # "manifest.jsonl line 7", for messages
    values: dict = dataclasses.field(default_factory=dict)  # the row's own settings (settings.SETTINGS' columns)
    workflow: str | None = None
    mask: str | None = None
    error: str | None = None  # set for a bad row: recorded as failed, never edited


@dataclasses.dataclass(frozen=True)
class Job:
    """One item as the run plans it, once: where its file is, which workflow edits it, the values set on the
    workflow's declared inputs, and the ledger key they make. Its bytes are read when it is handed out
    (`request`), so a batch never sits in memory."""
    id: str
    source: str  # absolute path of the image or video
    where: str  # the item's origin, for messages
    workflow: str  # a shipped workflow's name, or the path of the user's own
    upload_as: str  # the declared input the uploaded file fills: image or video
    inputs: dict  # setting -> value, for the workflow's declared inputs (None: the workflow's own)
    settings: dict  # what decides the edit: the key's ingredients besides the bytes (settings.key_settings)
    key: str
    segments: tuple = ()  # a clip edited in segments: ((start, stop), ...) frames; (): the file is edited whole

    @property
    def instruction(self) -> str:
        return self.settings["instruction"]

    @property
    def seed(self):
        return self.settings.get("seed")

    def result_names(self) -> list[str]:
        return result_names(self.id, self.source)

    def request(self, timeout: float) -> EditRequest:
        """What a worker needs for this job; the file read (and checked) again now: ItemError if it changed."""
        upload, extension = upload_bytes(self.source)
        return EditRequest(id=self.id, workflow=self.workflow, upload_as=self.upload_as, inputs=dict(self.inputs),
                           upload=upload, extension=extension, timeout=timeout)


def result_names(item_id: str, source: str) -> list[str]:
    """The files an item's edit is saved as: the edit (and, for an image, before | after)."""
    if video.is_video(source):
        return [f"{item_id}_edited.mp4"]
    return [f"{item_id}_edited.png", f"{item_id}_comparison.png"]


@dataclasses.dataclass(frozen=True)
class EditRequest:
    """What travels to a worker (through Ray: plain values only)."""
    id: str
    workflow: str
    upload_as: str
    inputs: dict
    upload: bytes
    extension: str
    timeout: float


@dataclasses.dataclass(frozen=True)
class Output:
    """One file a workflow saved: its kind is its output node's (prompt.output_kinds), never parsed from the
    file's name."""
    kind: str  # edited, comparison, turns, ...
    node: str  # the API prompt's id of the node that saved it
    filename: str  # as the server named it
    data: bytes


@dataclasses.dataclass
class Outcome:
    """What a worker returns for one EditRequest (plain values: it travels back through Ray)."""
    id: str
    worker: str
    status: str = "failed"  # ok | failed
    error: str | None = None
    final: bool = False  # a failure no retry can mend (the same values fail the same way on any worker)
    outputs: list = dataclasses.field(default_factory=list)  # [Output]
    texts: list = dataclasses.field(default_factory=list)  # what the workflow's text outputs said
    seconds: float = 0.0  # the whole item, upload included
    executor_seconds: float = 0.0  # inside ComfyUI's executor
    carry: str | None = None  # a segment of a clip: the noise state ICEdit Video Noise reported (icedit_carry)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# -- reading items ----------------------------------------------------------------------------------------------
def from_edit_pairs(pairs: list[tuple[str, str]], option: str = "--edit", workflow: str | None = None) -> list[Item]:
    rows = [{"image": image, "instruction": instruction, **({"workflow": workflow} if workflow else {})}
            for image, instruction in pairs]
    return from_rows(rows, base=os.getcwd(), where=[f"{option} #{n + 1}" for n in range(len(rows))])


def read_batch(path: str) -> list[Item]:
    """Items from a JSONL or CSV manifest, or from a folder of images with a NAME.txt instruction beside each."""
    if os.path.isdir(path):
        return _from_folder(path)
    if not os.path.isfile(path):
        raise ItemError(f"--batch {path}: no such file or folder")
    base = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    rows, where = [], []
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            if path.lower().endswith(".csv"):
                reader = csv.DictReader(handle)
                if not reader.fieldnames or "image" not in reader.fieldnames or "instruction" not in reader.fieldnames:
                    raise ItemError(f"{path}: a CSV manifest needs the columns image and instruction "
                                    f"(found {reader.fieldnames})")
                for row in reader:
                    extra = row.pop(None, None)  # fields past the header: an unquoted comma split a value
                    rows.append({k: v for k, v in row.items() if k and v not in (None, "")})
                    if extra and any(extra):
                        rows[-1]["_error"] = (f"{len(extra)} more field(s) than the header has columns; "
                                              "quote a value that holds a comma")
                    where.append(f"{name} line {reader.line_num}")
            else:
                for number, line in enumerate(handle, 1):
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as error:
                        row = {"_error": f"not a JSON object ({error.msg})"}
                    if not isinstance(row, dict):
                        row = {"_error": "not a JSON object"}
                    rows.append(row)
                    where.append(f"{name} line {number}")
    except UnicodeDecodeError:
        raise ItemError(f"{path}: not UTF-8 text; save the manifest as UTF-8") from None
    if not rows:
        raise ItemError(f"{path}: no items")
    return from_rows(rows, base, where)


def _from_folder(folder: str) -> list[Item]:
    rows, where = [], []
    for name in sorted(os.listdir(folder)):
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            continue
        stem = os.path.splitext(name)[0]
        sidecar = os.path.join(folder, stem + ".txt")
        row = {"image": name}  # its id comes from the file name, like a manifest row without one
        if os.path.isfile(sidecar):
            try:  # utf-8-sig: Notepad's byte order mark is no part of the instruction
                with open(sidecar, encoding="utf-8-sig") as handle:
                    row["instruction"] = handle.read().strip()
            except UnicodeDecodeError:
                row["_error"] = f"{stem}.txt is not UTF-8 text"
            except OSError as error:
                row["_error"] = f"cannot read {stem}.txt ({error.strerror})"
        else:
            row["_error"] = f"no instruction file {stem}.txt beside it"
        rows.append(row)
        where.append(os.path.join(os.path.basename(os.path.normpath(folder)), name))
    if not rows:
        raise ItemError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return from_rows(rows, folder, where)


def from_rows(rows: list[dict], base: str, where: list[str]) -> list[Item]:
    """Items from manifest rows (dicts of MANIFEST_COLUMNS); `where` names each row's origin for messages.
    A bad row becomes an item with `error` set, never an exception."""
    items, taken = [], set()
    for row, origin in zip(rows, where, strict=True):
        error = row.get("_error")
        image = str(row.get("image") or "")
        path = os.path.normpath(os.path.join(base, os.path.expanduser(image))) if image else ""
        explicit_id = str(row["id"]).strip() if row.get("id") not in (None, "") else None
        item_id = explicit_id or _free_id(_id_from_file_name(path), taken)
        if explicit_id is not None and item_id in taken:  # a bad row too: its failure is recorded under its id
            error = error or f"id {item_id!r} is used by an earlier row"
            item_id = _free_id(item_id, taken)
        taken.add(item_id)
        item = Item(id=item_id, image=path, instruction=str(row.get("instruction") or "").strip(), where=origin)
        if error is None:
            unknown = sorted(set(row) - set(MANIFEST_COLUMNS))
            if unknown:
                error = f"unknown columns {unknown} (known: {', '.join(MANIFEST_COLUMNS)})"
        for setting in settinglib.SETTINGS:
            if setting.manifest and row.get(setting.name) not in (None, ""):
                try:
                    item.values[setting.name] = setting.parse(row[setting.name])
                except settinglib.SettingError as bad:
                    # The value as the row wrote it: "seed = '7x' is not a whole number"
                    error = error or f"{setting.name} = {bad}"
        item.workflow = row.get("workflow") or None  # None: the run's --workflow (the video workflow for a clip)
        if row.get("mask"):
            item.mask = os.path.normpath(os.path.join(base, row["mask"]))
            error = error or "the mask column is not used by the shipped workflows yet; remove it"
        if error is None and not image:
            error = "no image given"
        if error is None and not item.instruction:
            error = "the instruction is empty"
        if error is None and not os.path.isfile(path):
            error = f"no such {'video' if video.is_video(path) else 'image'}: {path}"
        if error is None and not _is_safe_id(item_id):
            error = f"id {item_id!r} cannot be a file name (use letters, digits, '.', '_' and '-')"
        if error is None and len(item_id.encode()) > MAX_ID_BYTES:  # only a given id; one from a file name is cut
            error = (f"id {item_id[:24]!r}... is {len(item_id.encode())} bytes long; at most {MAX_ID_BYTES} "
                     "(its output file names must fit the file system's 255 bytes): give a shorter id")
        item.error = f"{origin}: {error}" if error else None
        items.append(item)
    return items


def _id_from_file_name(path: str) -> str:
    """'my photo (2).png' -> 'my_photo_2': a file-name-safe id from the image's name. A long name is cut (UTF-8
    bytes, not characters) and ends in a hash of the whole name, so two long names that start alike stay apart
    whatever their order; the room left over takes _free_id's '-2'."""
    stem = os.path.splitext(os.path.basename(path))[0]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)
    safe = "_".join(part for part in safe.split("_") if part).strip(".") or "item"
    if len(safe.encode()) <= MAX_ID_BYTES - 20:
        return safe
    head = safe.encode()[:MAX_ID_BYTES - 30].decode("utf-8", "ignore")  # never half a character
    return f"{head}-{hashlib.sha256(safe.encode()).hexdigest()[:8]}"


def _free_id(stem: str, taken: set) -> str:
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def _is_safe_id(item_id: str) -> bool:
    return bool(item_id) and item_id not in (".", "..") and all(c.isalnum() or c in "._-" for c in item_id)


# -- images -----------------------------------------------------------------------------------------------------
def upload_bytes(path: str) -> tuple[bytes, str]:
    """The bytes to upload for an image or video file, and their extension, after checking the file: a video
    must hold a frame that decodes (runner/video.py); an image must be a whole, single-frame image. Files
    ComfyUI's LoadImage reads as they are go unchanged (it applies the EXIF orientation itself); 16-bit and other
    high-depth images, which LoadImage would turn white, are converted to 8-bit PNG here (orientation applied).
    Raises ItemError naming the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ItemError(f"{path}: cannot read it ({error.strerror})") from None
    if not data:
        raise ItemError(f"{path}: the file is empty (0 bytes)")
    if video.is_video(path):
        check_video(path)
        return data, os.path.splitext(path)[1].lower()
    try:
        with Image.open(io.BytesIO(data)) as image:
            frames = getattr(image, "n_frames", 1)
            # A phone's MPO is a JPEG with a hidden second image; LoadImage reads only the first: one picture.
            if frames > 1 and image.format != "MPO":
                raise ItemError(f"{path}: an animated image with {frames} frames; ICEdit edits one picture - "
                                "save the frame you want as a PNG")
            image.load()  # decodes every row: a truncated file fails here
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F") or mode.startswith("I;16"):
                converted = _to_8bit(ImageOps.exif_transpose(image))
                out = io.BytesIO()
                converted.save(out, format="PNG")
                return out.getvalue(), ".png"
            extension = "." + (image.format or "png").lower().replace("jpeg", "jpg").replace("mpo", "jpg")
    except ItemError:
        raise
    except UnidentifiedImageError:
        raise ItemError(f"{path}: not an image file Pillow can read") from None
    except Image.DecompressionBombError as error:  # a small file that would decode to gigabytes
        size = str(error).split(",")[0]  # Pillow's 'Image size (N pixels) exceeds limit of M pixels'
        raise ItemError(f"{path}: too large to open ({size}; Pillow's guard against decompression bombs, "
                        "which ComfyUI's LoadImage applies too): scale it down first") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ItemError(f"{path}: the image is damaged or truncated ({error})") from None
    return data, extension


def check_video(path: str) -> video.ClipInfo:
    """What the clip holds, after checking that the video workflow can edit and save it (ItemError naming it)."""
    try:
        info = video.inspect(path)
        video.check_encodable(path, info)
    except video.VideoError as error:
        raise ItemError(str(error)) from None
    return info


def _to_8bit(image):
    """A 16-bit or 32-bit greyscale image as 8-bit RGB, scaled by the depth the values actually use."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image).astype(np.float64)
    top = 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
    if image.mode == "F":
        top = 1.0 if values.max(initial=0) <= 1.0 else 255.0
    eight = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(eight, mode="L").convert("RGB")


def content_key(image_bytes: bytes, settings: dict) -> str:
    """What an item's result depends on: the uploaded image and every setting. Same key, same edit."""
    digest = hashlib.sha256(image_bytes)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def file_key(path: str, settings: dict) -> str:
    """content_key of a file's bytes, read a block at a time (a long clip is never held whole)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise ItemError(f"{path}: cannot read it ({error.strerror})") from None
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:32]


# -- the ledger -------------------------------------------------------------------------------------------------
class Ledger:
    """DIR/results.jsonl: one line per finished item; the last line for an id is its state. Lines are appended
    only after the item's files exist, and flushed to disk one by one, so a run killed at any point leaves a
    ledger that the next run continues from. A clip edited in segments writes a "partial" line per finished
    segment; the last one for an id stays known (`partial`) through later failed lines, until its ok line."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, "results.jsonl")
        self.state: dict[str, dict] = {}
        self.partial: dict[str, dict] = {}  # id: the last "partial" line, while the clip is not finished
        self._cut_off_at: int | None = None  # where a cut-off last line starts; dropped before the next record
        if os.path.exists(self.path):
            with open(self.path, "rb") as handle:  # bytes: a write cut short may end inside a character
                lines = handle.read().split(b"\n")
            end = 0
            for number, line in enumerate(lines, 1):
                start, end = end, end + len(line) + 1
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:  # not JSON, or not UTF-8
                    if b"\n".join(lines[number:]):  # only the very last line may be cut short
                        raise ItemError(f"{self.path} line {number} is not JSON; the ledger is damaged") from None
                    self._cut_off_at = start
                    break
                if not isinstance(entry, dict) or "id" not in entry or "status" not in entry:
                    raise ItemError(f"{self.path} line {number} is not a ledger entry; the ledger is damaged")
                self._note(entry)

    def done(self, item_id: str, key: str) -> bool:
        entry = self.state.get(item_id)
        return entry is not None and entry["status"] == "ok" and entry.get("key") == key

    def conflict(self, item_id: str, key: str) -> bool:
        """A finished edit under this id was made from another image or other settings."""
        entry = self.state.get(item_id)
        return entry is not None and entry["status"] == "ok" and entry.get("key") != key

    def record_ok(self, job: Job, outcome: Outcome, written: list[str]) -> None:
        self.record({"id": job.id, "status": "ok", "outputs": sorted(written), "key": job.key, "image": job.source,
                     "instruction": job.instruction, "seed": job.seed, "workflow": job.workflow,
                     "worker": outcome.worker, "seconds": round(outcome.seconds, 3),
                     "executor_seconds": round(outcome.executor_seconds, 3), "error": None, "report": outcome.texts})

    def record_partial(self, job: Job, outcome: Outcome, finished: int, written: list[str]) -> None:
        """Segment `finished` (1-based) of the job's clip is edited; its files are in the segment folder."""
        self.record({"id": job.id, "status": "partial", "segment": finished, "segments": len(job.segments),
                     "frames": list(job.segments[finished - 1]), "outputs": sorted(written), "key": job.key,
                     "image": job.source, "instruction": job.instruction, "seed": job.seed, "workflow": job.workflow,
                     "worker": outcome.worker, "seconds": round(outcome.seconds, 3),
                     "executor_seconds": round(outcome.executor_seconds, 3), "error": None})

    def segments_done(self, item_id: str, key: str) -> int:
        """How many segments of the clip with this key the ledger says are edited (0 for another key)."""
        entry = self.partial.get(item_id)
        return entry["segment"] if entry is not None and entry.get("key") == key else 0

    def record_failed(self, job: Job, error: str, worker: str | None = None, seconds: float = 0.0) -> None:
        self.record({"id": job.id, "status": "failed", "outputs": [], "key": job.key, "image": job.source,
                     "instruction": job.instruction, "seed": job.seed, "workflow": job.workflow, "worker": worker,
                     "seconds": round(seconds, 3), "error": error})

    def record_refused(self, item: Item, error: str, seed, workflow: str) -> None:
        """A row refused before any edit (bad row, unreadable file): failed, with no key, so the next run looks
        at it again."""
        self.record({"id": item.id, "status": "failed", "error": error, "image": item.image,
                     "instruction": item.instruction, "seed": seed, "workflow": workflow, "outputs": [],
                     "worker": None, "seconds": 0})

    def record(self, entry: dict) -> None:
        """Appends one line (the typed record_* above are how a run writes; this is their one way to disk)."""
        entry = {**entry, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if self._cut_off_at is not None:  # else this record would be glued onto the cut-off line
            os.truncate(self.path, self._cut_off_at)
            self._cut_off_at = None
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._note(entry)

    def _note(self, entry: dict) -> None:
        self.state[entry["id"]] = entry
        if entry["status"] == "partial" and isinstance(entry.get("segment"), int):
            self.partial[entry["id"]] = entry
        elif entry["status"] == "ok":
            self.partial.pop(entry["id"], None)


def write_atomically(path: str, data: bytes) -> None:
    """Whole or not at all: a temp file beside the target, renamed over it."""
    temp = f"{path}.partial-{os.getpid()}"
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
