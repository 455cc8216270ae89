"""How far a job has come: the stage it is in and the share of it done, for the status a
requester sees while a long job runs.

The tools report from wherever they run (yt-dlp's hook in a worker thread, ffmpeg's progress
lines on the event loop) into the job's `JobProgress`; the service reads the latest report.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bot.i18n import N_, Catalogues


class Stage(enum.Enum):
    DOWNLOADING = "downloading"
    # Re-encoded to fit the upload budget.
    COMPRESSING = "compressing"
    # Re-encoded to play everywhere (an HEVC source, a JPEG-range picture).
    CONVERTING = "converting"
    UPLOADING = "uploading"


@dataclass(frozen=True, slots=True)
class Progress:
    """A stage and the share of it done (None: unknown); `budget_bytes` is what COMPRESSING
    fits the clip into."""

    stage: Stage
    fraction: float | None = None
    budget_bytes: int | None = None

    @property
    def percent(self) -> int | None:
        if self.fraction is None:
            return None
        return max(0, min(100, int(self.fraction * 100)))


# A tool's way to say how far it has come; callable from any thread.
Reporter = Callable[[Progress], None]

_TEXTS: dict[Stage, tuple[str, str | None]] = {
    Stage.DOWNLOADING: (N_("Downloading…"), N_("Downloading… {percent}%")),
    Stage.COMPRESSING: (
        N_("Compressing to fit {mb} MB…"),
        N_("Compressing to fit {mb} MB… {percent}%"),
    ),
    Stage.CONVERTING: (N_("Converting…"), N_("Converting… {percent}%")),
    Stage.UPLOADING: (N_("Uploading…"), None),
}


def status_text(progress: Progress, texts: Catalogues, language: str | None) -> str:
    """The status line a requester reads, in their language."""
    without, with_percent = _TEXTS[progress.stage]
    fields: dict[str, object] = {"mb": megabytes(progress.budget_bytes or 0)}
    percent = progress.percent
    if percent is None or with_percent is None:
        return texts.text(language, without, **fields)
    return texts.text(language, with_percent, percent=percent, **fields)


def megabytes(size: int) -> str:
    """Decimal megabytes as people read them: whole from 10 up, else one decimal."""
    mb = size / 1_000_000
    return f"{mb:.0f}" if mb >= 9.95 else f"{mb:.1f}".removesuffix(".0")


def shown_alike(a: Progress | None, b: Progress | None) -> bool:
    """Whether two reports read the same (no edit is worth making between them)."""
    if a is None or b is None:
        return a is b
    return (a.stage, a.percent, a.budget_bytes) == (b.stage, b.percent, b.budget_bytes)


class JobProgress:
    """The latest report of one job, written from any thread, read by the service."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: Progress | None = None

    def report(self, progress: Progress) -> None:
        with self._lock:
            self._latest = progress

    @property
    def latest(self) -> Progress | None:
        with self._lock:
            return self._latest
