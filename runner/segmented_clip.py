"""One clip edited in segments, as the engine runs it: which segment is next, its request (the segment's frames
and the noise state the previous segment left), where each edited segment is kept until the clip is finished,
and the joined result. The ledger says how many segments are done (its "partial" lines); the files say which
are really there; a run goes on from the first segment both agree is unfinished.

Kept per clip and key: DIR/.icedit-segments/<id>/<key>/<n>.json (what segment n's prompt reported, its noise
state included) and <n>.mp4 (its edited frames), each written whole; the folder goes once the clip is joined.
"""
from __future__ import annotations

import json
import os
import shutil

from ..icedit_core.segment_carry import CARRY_START
from . import items as itemlib, segments

SEGMENTS_FOLDER = ".icedit-segments"


class SegmentedClip:
    def __init__(self, job: itemlib.Job, output: str, ledger: itemlib.Ledger):
        self.job = job
        self.folder = os.path.join(output, SEGMENTS_FOLDER, job.id, job.key)
        self.parent = os.path.dirname(self.folder)
        if os.path.isdir(self.parent):  # segments of this id made under other settings or from another file
            for name in os.listdir(self.parent):
                if name != job.key:
                    shutil.rmtree(os.path.join(self.parent, name), ignore_errors=True)
        os.makedirs(self.folder, exist_ok=True)
        said = ledger.segments_done(job.id, job.key)
        self.next = next((n for n in range(said) if not self._finished(n)), said)
        self.source = segments.SegmentSource(job.source)

    @property
    def count(self) -> int:
        return len(self.job.segments)

    def describe(self) -> str:
        start, stop = self.job.segments[self.next]
        return f"segment {self.next + 1}/{self.count}, frames {start + 1}-{stop}"

    def request(self, timeout: float) -> itemlib.EditRequest:
        """The next segment's request: its frames as a file (segments.SegmentSource), the noise state to go on
        from (CARRY_START on the first segment, so the noise node reports its state)."""
        start, stop = self.job.segments[self.next]
        path = os.path.join(self.folder, f"{self.next}.source{segments.SEGMENT_EXTENSION}")
        try:
            self.source.write(start, stop, path)
            with open(path, "rb") as handle:
                upload = handle.read()
        finally:
            if os.path.exists(path):
                os.remove(path)
        carry = CARRY_START if self.next == 0 else self._report(self.next - 1)["carry"]
        return itemlib.EditRequest(id=self.job.id, workflow=self.job.workflow, upload_as=self.job.upload_as,
                                   inputs={**self.job.inputs, "video_carry": carry}, upload=upload,
                                   extension=segments.SEGMENT_EXTENSION, timeout=timeout)

    def keep(self, outcome: itemlib.Outcome) -> list[str]:
        """Keeps the edited segment (its report first, then its frames: a segment counts once its .mp4 is
        there); returns the files written. ValueError when the prompt reported no noise state."""
        if not outcome.carry:
            raise ValueError(f"{self.job.where}: {self.describe()} finished, but its ICEdit Video Noise reported no "
                             "noise state (icedit_carry) for the next segment; is its carry_in connected?")
        edited = [output for output in outcome.outputs if output.kind == "edited"]
        report = {"carry": outcome.carry, "texts": outcome.texts, "worker": outcome.worker,
                  "seconds": outcome.seconds, "executor_seconds": outcome.executor_seconds,
                  "frames": list(self.job.segments[self.next])}
        itemlib.write_atomically(self._path(self.next, ".json"), json.dumps(report).encode())
        itemlib.write_atomically(self._path(self.next, ".mp4"), edited[0].data)
        self.next += 1
        return [f"{self.next - 1}.json", f"{self.next - 1}.mp4"]

    @property
    def finished(self) -> bool:
        return self.next >= self.count

    def join(self, out_path: str) -> itemlib.Outcome:
        """The edited segments joined at out_path; an Outcome for the whole clip (every segment's texts, time
        summed)."""
        frames = segments.join([self._path(n, ".mp4") for n in range(self.count)], self.job.source, out_path)
        reports = [self._report(n) for n in range(self.count)]
        texts = [f"{frames} frames edited in {self.count} segments of up to "
                 f"{max(stop - start for start, stop in self.job.segments)} frames, joined"]
        for number, report in enumerate(reports, 1):
            texts += [f"segment {number}: {text}" for text in report["texts"]]
        return itemlib.Outcome(id=self.job.id, worker=reports[-1]["worker"], status="ok", texts=texts,
                               seconds=sum(r["seconds"] for r in reports),
                               executor_seconds=sum(r["executor_seconds"] for r in reports))

    def close(self) -> None:
        self.source.close()

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.parent, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(self.parent))  # the segments folder, once no clip is left in it
        except OSError:
            pass

    def _path(self, number: int, extension: str) -> str:
        return os.path.join(self.folder, f"{number}{extension}")

    def _finished(self, number: int) -> bool:
        return os.path.exists(self._path(number, ".json")) and os.path.exists(self._path(number, ".mp4"))

    def _report(self, number: int) -> dict:
        with open(self._path(number, ".json"), encoding="utf-8") as handle:
            return json.loads(handle.read())
