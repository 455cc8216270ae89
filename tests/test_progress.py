"""Progress reports from the tools, and the status lines they read as."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import imageio_ffmpeg
import pytest

from adapters.telegram.inbound import TelegramOrigin
from bot import status
from bot.download import arrival
from bot.i18n import Catalogues
from bot.media import run_ffmpeg
from bot.model import Manner, Origin
from bot.ports import Replier
from bot.progress import JobProgress, Progress, Stage, shown_alike, status_text

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def test_status_lines_in_the_requesters_language() -> None:
    texts = Catalogues.load()
    assert status_text(Progress(Stage.DOWNLOADING, 0.456), texts, "en") == "Downloading… 45%"
    assert status_text(Progress(Stage.DOWNLOADING), texts, "en") == "Downloading…"
    fitting = Progress(Stage.COMPRESSING, 0.6, budget_bytes=50_000_000)
    assert status_text(fitting, texts, "en") == "Compressing to fit 50 MB… 60%"
    assert status_text(fitting, texts, "de") == "Wird auf 50 MB komprimiert… 60%"
    discord = Progress(Stage.COMPRESSING, None, budget_bytes=10 * 1024 * 1024)
    assert status_text(discord, texts, "es") == "Comprimiendo a 10 MB…"
    assert status_text(Progress(Stage.UPLOADING, 0.5), texts, "ru") == "Отправляю…"


def test_reports_that_read_the_same_are_not_shown_again() -> None:
    assert shown_alike(Progress(Stage.DOWNLOADING, 0.451), Progress(Stage.DOWNLOADING, 0.459))
    assert not shown_alike(Progress(Stage.DOWNLOADING, 0.45), Progress(Stage.DOWNLOADING, 0.46))
    assert not shown_alike(None, Progress(Stage.UPLOADING))
    job = JobProgress()
    job.report(Progress(Stage.CONVERTING, 0.2))
    assert job.latest == Progress(Stage.CONVERTING, 0.2)


@pytest.mark.parametrize(
    ("status", "fraction"),
    [
        ({"status": "downloading", "downloaded_bytes": 50, "total_bytes": 200}, 0.25),
        ({"status": "downloading", "downloaded_bytes": 50, "total_bytes_estimate": 100}, 0.5),
        ({"status": "downloading", "downloaded_bytes": 50}, None),
        ({"status": "finished", "downloaded_bytes": 200, "total_bytes": 200}, 1.0),
    ],
)
def test_ytdlp_reports_become_download_shares(
    status: dict[str, object], fraction: float | None
) -> None:
    assert arrival(status) == Progress(Stage.DOWNLOADING, fraction)


async def test_ffmpeg_reports_the_seconds_encoded_as_it_goes(tmp_path: Path) -> None:
    heard: list[float] = []
    await run_ffmpeg(
        FFMPEG,
        "-f", "lavfi", "-i", "testsrc2=s=320x240:rate=30:duration=3",
        "-c:v", "libx264", "-preset", "veryslow", str(tmp_path / "out.mp4"),
        on_time=heard.append,
    )  # fmt: skip
    assert heard == sorted(heard)
    assert heard[-1] == pytest.approx(3.0, abs=0.1)
    assert (tmp_path / "out.mp4").stat().st_size > 0


class _StuckStatus:
    """The status half of a Replier whose status call never returns (a flood wait)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def status(self, origin: Origin, progress: Progress, manner: Manner) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def clear_status(self, origin: Origin, *, earlier: bool = False) -> None:
        return None


async def test_a_status_call_still_under_way_after_the_settling_time_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Else it could land after `clear` and stay for good.
    monkeypatch.setattr(status, "STATUS_AFTER_S", 0.0)
    monkeypatch.setattr(status, "SETTLE_S", 0.05)
    replier = _StuckStatus()
    line = status.StatusLine(cast(Replier, replier), TelegramOrigin(1, 1), Manner())
    showing = asyncio.create_task(line.show(Progress(Stage.DOWNLOADING)))
    await replier.started.wait()
    showing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await showing
    await asyncio.sleep(0)
    assert replier.cancelled
