"""Fitting a clip to a byte budget: the plan (pure) and real encodes of a clip with motion."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from bot.encode_plan import EncodePlan, container_overhead, plan_encode
from bot.fit import FfmpegFitter
from bot.media import Probe, probe
from bot.model import FetchError, Reason

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
TEN_MIB = 10 * 1024 * 1024


@dataclass(frozen=True)
class Source:
    path: Path
    duration: float


def render_moving(path: Path, *, width: int, height: int, duration: float, audio: bool) -> Source:
    """A camera pan over fractal detail, a moving test card and grain: it compresses like video,
    not like a flat test pattern, so bitrate control is exercised for real."""
    graph = (
        f"mandelbrot=s={width * 4 // 3}x{height * 4 // 3}:rate=30:start_scale=0.05:maxiter=256,"
        "trim=end_frame=1,loop=loop=-1:size=1,setpts=N/30/TB,"
        f"crop={width}:{height}:x='{width // 6}*(1+sin(t*0.9))':y='{height // 6}*(1+sin(t*0.6))'"
        f"[bg];testsrc2=s={width // 2}x{width // 2}:rate=30[fg];"
        f"[bg][fg]overlay=x='{width // 4}*(1+sin(t*1.3))':y='{height // 3}*(1+cos(t))',"
        "noise=alls=6:allf=t+u,format=yuv420p[v]"
    )
    if audio:
        graph += ";anoisesrc=color=pink:amplitude=0.2,aformat=channel_layouts=stereo[a]"
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-filter_complex", graph, "-map", "[v]"]  # fmt: skip
    if audio:
        cmd += ["-map", "[a]", "-c:a", "aac", "-b:a", "192k"]
    cmd += ["-t", str(duration), "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M",
            "-movflags", "+faststart", str(path)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return Source(path, duration)


@pytest.fixture(scope="module")
def moving(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """6 s of 720x1280 at 30 fps with sound, ~6 MB."""
    return render_moving(
        tmp_path_factory.mktemp("fit") / "moving.mp4",
        width=720,
        height=1280,
        duration=6.0,
        audio=True,
    )


def plan(**overrides: float | int | bool) -> EncodePlan | None:
    facts: dict[str, float | int | bool] = {
        "duration": 60.0,
        "width": 1080,
        "height": 1920,
        "fps": 30.0,
        "has_audio": True,
        "budget_bytes": TEN_MIB,
    }
    facts.update(overrides)
    return plan_encode(**facts)  # type: ignore[arg-type]


def test_a_minute_of_1080p_in_10_mib_comes_out_720p() -> None:
    made = plan()
    assert made is not None
    assert (made.width, made.height) == (720, 1280)
    assert made.audio_kbps == 128
    total_bytes = (made.video_kbps + made.audio_kbps) * 1000 / 8 * 60
    assert 0.88 * TEN_MIB < total_bytes < 0.95 * TEN_MIB


def test_a_minute_of_1080p_in_50_mb_stays_1080p() -> None:
    made = plan(budget_bytes=50_000_000)
    assert made is not None
    assert (made.width, made.height) == (1080, 1920)
    assert made.video_kbps > 5_000


def test_a_budget_below_the_quality_floor_gives_no_plan() -> None:
    assert plan(budget_bytes=1_000_000) is None
    assert plan(duration=600.0) is None


def test_a_long_clip_in_a_small_budget_steps_down_to_360p() -> None:
    made = plan(duration=240.0)
    assert made is not None
    assert (made.width, made.height) == (360, 640)
    assert made.audio_kbps == 64


@pytest.mark.parametrize(
    ("width", "height"), [(360, 640), (480, 270), (101, 77), (1080, 1920), (2160, 3840)]
)
@pytest.mark.parametrize("budget", [TEN_MIB, 50_000_000, 2_000_000_000])
def test_never_upscales_keeps_aspect_and_even_sides(width: int, height: int, budget: int) -> None:
    made = plan(width=width, height=height, budget_bytes=budget, duration=30.0)
    assert made is not None
    assert made.width <= width
    assert made.height <= height
    assert made.width % 2 == 0
    assert made.height % 2 == 0
    assert made.width / made.height == pytest.approx(width / height, rel=0.03)


def test_a_landscape_source_steps_down_by_its_short_side() -> None:
    made = plan(width=1920, height=1080)
    assert made is not None
    assert (made.width, made.height) == (1280, 720)


def test_a_silent_source_gets_no_audio_and_all_bits_for_video() -> None:
    silent = plan(has_audio=False)
    sound = plan()
    assert silent is not None
    assert sound is not None
    assert silent.audio_kbps is None
    assert silent.video_kbps == sound.video_kbps + 128


def test_nonsense_facts_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot plan"):
        plan(duration=0.0)


async def test_a_clip_is_fitted_between_85_and_100_percent_of_its_budget(
    moving: Source, tmp_path: Path
) -> None:
    found = probe(moving.path)
    budget = int(found.size * 0.4)
    fitted = await FfmpegFitter(FFMPEG).fit(moving.path, found, budget, tmp_path)
    made = probe(fitted)
    assert 0.85 * budget <= made.size <= budget
    assert made.playable
    assert (made.vcodec, made.pix_fmt, made.acodec) == ("h264", "yuv420p", "aac")
    assert (made.width, made.height) == (720, 1280)
    assert made.duration == pytest.approx(moving.duration, abs=0.15)


async def test_a_silent_clip_stays_silent(tmp_path: Path) -> None:
    source = render_moving(
        tmp_path / "silent.mp4", width=360, height=640, duration=3.0, audio=False
    )
    found = probe(source.path)
    budget = int(found.size * 0.4)
    fitted = await FfmpegFitter(FFMPEG).fit(source.path, found, budget, tmp_path)
    made = probe(fitted)
    assert made.acodec is None
    assert made.playable
    assert 0.85 * budget <= made.size <= budget


async def test_a_budget_too_small_for_any_size_fails_at_once(
    moving: Source, tmp_path: Path
) -> None:
    with pytest.raises(FetchError) as caught:
        await FfmpegFitter(FFMPEG).fit(moving.path, probe(moving.path), 20_000, tmp_path)
    assert caught.value.reason is Reason.TOO_LARGE
    assert list(tmp_path.iterdir()) == []


async def test_cancelling_a_fit_kills_ffmpeg(
    moving: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[asyncio.subprocess.Process] = []
    running = asyncio.Event()
    spawn = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await spawn(*args, **kwargs)
        started.append(process)
        running.set()
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    found = probe(moving.path)
    fitting = asyncio.create_task(
        FfmpegFitter(FFMPEG).fit(moving.path, found, found.size // 3, tmp_path)
    )
    await asyncio.wait_for(running.wait(), timeout=10)
    fitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fitting
    [process] = started
    assert process.returncode == -signal.SIGKILL


class Overshooting(FfmpegFitter):
    """Writes a real mp4 padded so its video part is `factor` x planned (and the whole file
    at least `at_least` bytes): an encoder that misses its target."""

    def __init__(
        self, body: Path, duration: float, factors: list[float], at_least: int = 0
    ) -> None:
        super().__init__(FFMPEG)
        self.body = body.read_bytes()
        self.duration = duration
        self.factors = factors
        self.at_least = at_least
        self.plans: list[EncodePlan] = []

    async def encode(
        self,
        source: Path,
        plan: EncodePlan,
        target: Path,
        *,
        on_time: Callable[[float], None] | None = None,
    ) -> None:
        self.plans.append(plan)
        factor = self.factors[len(self.plans) - 1]
        to_bytes = 1000 / 8 * self.duration
        size = container_overhead(self.duration) + int(
            ((plan.audio_kbps or 0) + plan.video_kbps * factor) * to_bytes
        )
        padding = max(size, self.at_least) - len(self.body)
        # A trailing `free` box: players skip it, the file stays valid and faststart.
        data = self.body + padding.to_bytes(4, "big") + b"free" + bytes(padding - 8)
        await asyncio.to_thread(target.write_bytes, data)


@pytest.fixture(scope="module")
def body(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few kB of playable mp4 for the stand-in encoder to pad."""
    path = tmp_path_factory.mktemp("fit") / "body.mp4"
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "lavfi", "-i", "testsrc2=s=64x64:rate=10:duration=1",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
           str(path)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def pretend_large(body: Path) -> Probe:
    """The body's probe, saying it is 6 s and 6 MB long: what the fitter plans from."""
    return replace(probe(body), duration=6.0, size=6_000_000)


async def test_a_miss_is_corrected_by_the_measured_ratio(body: Path, tmp_path: Path) -> None:
    fitter = Overshooting(body, 6.0, [1.2, 1.2])
    budget = 3_000_000
    fitted = await fitter.fit(body, pretend_large(body), budget, tmp_path)
    assert 0.85 * budget <= fitted.stat().st_size <= budget
    first, second = fitter.plans
    assert second.video_kbps == pytest.approx(first.video_kbps / 1.2, rel=0.01)


async def test_a_file_over_budget_is_never_returned(body: Path, tmp_path: Path) -> None:
    budget = 3_000_000
    fitter = Overshooting(body, 6.0, [1.0, 1.0, 1.0], at_least=budget + 1)
    with pytest.raises(FetchError) as caught:
        await fitter.fit(body, pretend_large(body), budget, tmp_path)
    assert caught.value.reason is Reason.TOO_LARGE
    assert len(fitter.plans) == 3
    assert not (tmp_path / "fitted.mp4").exists()
