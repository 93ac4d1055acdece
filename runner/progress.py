"""One overall progress display for a run: done / failed / total, items per second, ETA, and what each worker
is editing. On a terminal it is one line redrawn in place; in a log (not a terminal) it writes one plain line
per finished item and nothing else. Stdlib only."""
from __future__ import annotations

import shutil
import sys
import time

DETAIL_LIMIT = 20  # up to this many items, each one's files and reports are printed too


class Progress:
    def __init__(self, total: int, quiet: bool = False, log=print, stream=None):
        self.total, self.quiet, self.log = total, quiet, log
        self.stream = stream or sys.stdout
        self.interactive = not quiet and self.stream.isatty()
        self.ok = self.failed = 0
        self.current: dict[str, str | None] = {}
        self.started = time.monotonic()
        self.line_shown = False

    def working(self, worker: str, item_id: str | None) -> None:
        self.current[worker] = item_id
        self.refresh()

    def finished(self, item_id, ok, worker, seconds, files, texts) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        count = f"[{self.ok + self.failed}/{self.total}]"
        where = f" on {worker}" if worker else ""
        if ok:
            message = f"{count} ok {item_id}{where}, {seconds:.1f} s"
        else:
            message = f"{count} FAILED {item_id}{where}: {texts[0].splitlines()[0] if texts else ''}"
        if self.total <= DETAIL_LIMIT:
            message += "".join(f"\n  wrote {path}" for path in files)
            if ok:  # reports of the MoE loader, Early Filter, multi-turn log
                message += "".join("\n  " + text.replace("\n", "\n  ") for text in texts)
        if ok and self.quiet:
            return
        self._print(message)

    def rate(self) -> tuple[float, float | None]:
        elapsed = time.monotonic() - self.started
        done = self.ok + self.failed
        per_second = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / per_second if per_second > 0 else None
        return per_second, eta

    def refresh(self) -> None:
        if not self.interactive:
            return
        per_second, eta = self.rate()
        busy = ", ".join(f"{w}: {item}" for w, item in sorted(self.current.items()) if item)
        eta_text = f"ETA {_duration(eta)}" if eta is not None else "ETA -"
        line = (f"{self.ok + self.failed}/{self.total} done ({self.failed} failed), {per_second:.2f} items/s, "
                f"{eta_text}" + (f" | {busy}" if busy else ""))
        width = shutil.get_terminal_size((120, 20)).columns - 1  # a wrapped line could not be redrawn in place
        self.stream.write("\r" + line[:width].ljust(width))
        self.stream.flush()
        self.line_shown = True

    def _print(self, message: str) -> None:
        if self.line_shown:
            self.stream.write("\r\033[K")
            self.line_shown = False
        self.log(message)
        self.refresh()

    def close(self) -> None:
        if self.line_shown:
            self.stream.write("\n")
            self.stream.flush()
            self.line_shown = False


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
