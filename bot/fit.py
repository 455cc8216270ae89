"""Fit a clip into a chat's upload limit: plan the size and bitrates, encode, verify, retry.

The plan spends the budget (less a margin) on video and AAC audio over the clip's duration and
steps the picture down a ladder of standard short sides while the video would get too few bits
per pixel per frame: below about 0.025 bpp a 1080p encode turns to mush and the same bits look
better at 720p (measured with bench/fit.py). Encoding is x264 one-pass ABR with a VBV cap: it
lands within a few percent of its target, so the verify-and-retry loop rarely encodes twice, and
two-pass cost 1.5-2x the time for no better SSIM.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bot.media import Probe, encoded_share, run_ffmpeg
from bot.media import probe as probe_file
from bot.model import FetchError, Reason
from bot.progress import Reporter, Stage

log = logging.getLogger(__name__)

# The share of the budget the first encode aims at: the file must never pass 100% and should
# land above 85%; x264's one-pass ABR misses by a few percent either way.
TARGET_FILL = 0.93
MIN_FILL = 0.85
MAX_RETRIES = 2
# mp4 index and headers: about 12 bytes per frame (video and audio sample tables) plus a few kB.
CONTAINER_BASE_BYTES = 8_192
CONTAINER_BYTES_PER_SECOND = 1_000

# Short sides the picture steps down through; the source's own size comes first (never upscaled).
SHORT_SIDES = (1080, 720, 540, 480, 360)
# Keep a size while its video gets at least this many bits per pixel per frame (measured knee:
# 1080p beats 720p from ~0.025 bpp up on the bench clip; 0.03 leaves a margin).
TARGET_BPP = 0.03
# Below this at the smallest size (about 150 kbit/s at 360x640, 30 fps) the clip is unwatchable.
FLOOR_BPP = 0.022
# Frames past 30 per second are cheap to code (they differ little): they count half.
BASE_FPS = 30.0
# AAC rates: the largest that takes at most this share of the total bitrate, else the smallest.
AUDIO_KBPS = (128, 96, 64)
AUDIO_SHARE = 0.10
# x264 presets by output pixel rate: the slowest that still encodes twice realtime on 2 cores
# with room to spare, decoding a 12 Mbit/s 1080p source included (bench/fit.py --compare).
# Measured at 720p30 (CPU s / 2 cores / clip s): veryfast 0.31, faster 0.42, fast 0.47,
# medium 0.53; at 1080p30: superfast 0.36, veryfast 0.55.
PRESETS = (
    (540 * 960 * 30, "medium"),
    (720 * 1280 * 30, "faster"),
    (1080 * 1920 * 30, "superfast"),
)
FASTEST_PRESET = "ultrafast"
# VBV: short peaks up to 1.5x the average, smoothed over 2 s of video, so playback can start early.
MAXRATE_FACTOR = 1.5
BUFSIZE_SECONDS = 2


@dataclass(frozen=True, slots=True)
class EncodePlan:
    """Output size, bitrates and x264 preset of one re-encode."""

    width: int
    height: int
    video_kbps: int
    audio_kbps: int | None
    preset: str


def _even_down(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _even_nearest(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _sizes(width: int, height: int) -> list[tuple[int, int]]:
    """The source size (evened) and each smaller standard size with the same aspect."""
    short, long = min(width, height), max(width, height)
    rungs = [(_even_down(short), _even_down(long))]
    for side in SHORT_SIDES:
        if side < rungs[0][0]:
            rungs.append((side, min(rungs[0][1], _even_nearest(long * side / short))))
    return [(s, lg) if width <= height else (lg, s) for s, lg in rungs]


def _effective_fps(fps: float) -> float:
    fps = fps if math.isfinite(fps) and fps > 0 else BASE_FPS
    return fps if fps <= BASE_FPS else BASE_FPS + (fps - BASE_FPS) / 2


def _preset(width: int, height: int, fps: float) -> str:
    pixel_rate = width * height * (fps if math.isfinite(fps) and fps > 0 else BASE_FPS)
    for limit, preset in PRESETS:
        if pixel_rate <= limit * 1.05:
            return preset
    return FASTEST_PRESET


def _audio_kbps(total_kbps: float) -> int:
    return next((k for k in AUDIO_KBPS if k <= total_kbps * AUDIO_SHARE), AUDIO_KBPS[-1])


def container_overhead(duration: float) -> int:
    """Bytes the mp4 adds around the streams, estimated high."""
    return CONTAINER_BASE_BYTES + int(CONTAINER_BYTES_PER_SECOND * duration)


def plan_encode(
    *, duration: float, width: int, height: int, fps: float, has_audio: bool, budget_bytes: int
) -> EncodePlan | None:
    """The largest standard size whose bitrate stays watchable, or None when none would be.

    Sizes: the source's own, then short sides 1080/720/540/480/360 below it, aspect kept, even.
    A size is taken when its video gets >= TARGET_BPP bits per pixel per frame; failing that,
    the smallest size if it gets >= FLOOR_BPP (~150 kbit/s at 360x640, 30 fps), else None: the
    clip is too large even after re-encoding. The streams aim at TARGET_FILL of the budget.
    """
    if duration <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"cannot plan {width}x{height} for {duration} s")
    usable = budget_bytes * TARGET_FILL - container_overhead(duration)
    total_kbps = usable * 8 / duration / 1000
    audio = _audio_kbps(total_kbps) if has_audio else None
    video_kbps = int(total_kbps - (audio or 0))
    if video_kbps <= 0:
        return None
    frames = _effective_fps(fps)
    sizes = _sizes(width, height)
    for w, h in sizes:
        if video_kbps * 1000 / (w * h * frames) >= TARGET_BPP:
            break
    else:
        w, h = sizes[-1]
        if video_kbps * 1000 / (w * h * frames) < FLOOR_BPP:
            return None
    return EncodePlan(w, h, video_kbps, audio, _preset(w, h, fps))


class FfmpegFitter:
    """Re-encodes a clip to H.264/AAC mp4 that fits a byte budget, with the ffmpeg binary."""

    def __init__(self, ffmpeg_path: str) -> None:
        self._ffmpeg = ffmpeg_path

    async def fit(
        self,
        source: Path,
        probe: Probe,
        budget_bytes: int,
        workdir: Path,
        *,
        progress: Reporter | None = None,
    ) -> Path:
        """A playable mp4 of at most budget_bytes (and >= 85% of it when the source was larger);
        each encode reports how far it has come to `progress` (COMPRESSING)."""
        if probe.duration <= 0 or probe.width <= 0 or probe.height <= 0:
            raise FetchError(Reason.FAILED, f"cannot re-encode without size and duration: {probe}")
        source_bytes = probe.size
        # A source under the budget needs no more bits than it has.
        goal = min(budget_bytes, source_bytes)
        plan = plan_encode(
            duration=probe.duration,
            width=probe.width,
            height=probe.height,
            fps=probe.fps,
            has_audio=probe.acodec is not None,
            budget_bytes=goal,
        )
        if plan is None:
            raise FetchError(
                Reason.TOO_LARGE, f"{probe.duration:.1f} s will not fit {budget_bytes} bytes"
            )
        target = workdir / "fitted.mp4"
        on_time = (
            encoded_share(progress, probe.duration, Stage.COMPRESSING, budget_bytes)
            if progress is not None
            else None
        )
        for attempt in range(MAX_RETRIES + 1):
            await self.encode(source, plan, target, on_time=on_time)
            size = (await asyncio.to_thread(target.stat)).st_size
            log.info("fit attempt %d: %s -> %d bytes of %d", attempt + 1, plan, size, budget_bytes)
            if size <= budget_bytes and (source_bytes <= budget_bytes or size >= MIN_FILL * goal):
                break
            if attempt < MAX_RETRIES:
                plan = _corrected(plan, size, goal, probe.duration)
        if size > budget_bytes:
            await asyncio.to_thread(target.unlink, missing_ok=True)
            raise FetchError(Reason.TOO_LARGE, f"re-encode still {size} bytes over {budget_bytes}")
        if source_bytes > budget_bytes and size < MIN_FILL * goal:
            log.warning("fit left %d of %d bytes unused; sending it anyway", goal - size, goal)
        made = await asyncio.to_thread(probe_file, target)
        if not made.playable:
            raise FetchError(Reason.FAILED, f"re-encode not playable: {made}")
        return target

    async def encode(
        self,
        source: Path,
        plan: EncodePlan,
        target: Path,
        *,
        on_time: Callable[[float], None] | None = None,
    ) -> None:
        """One ffmpeg run of the plan: H.264 high yuv420p (tv range), AAC or no audio, faststart;
        `on_time` hears the seconds encoded as they come."""
        await run_ffmpeg(
            self._ffmpeg,
            "-i", str(source), "-map", "0:v:0", "-map", "0:a:0?",
            *video_args(plan), *audio_args(plan),
            "-movflags", "+faststart", "-f", "mp4", str(target),
            on_time=on_time,
        )  # fmt: skip


def video_args(plan: EncodePlan) -> list[str]:
    """ffmpeg output options for the plan's picture: scale, range, x264 one-pass ABR with VBV."""
    short, long = min(plan.width, plan.height), max(plan.width, plan.height)
    # Sized by orientation, so a source that ffmpeg auto-rotates is not stretched.
    scale = (
        f"scale=w='if(gt(iw,ih),{long},{short})':h='if(gt(iw,ih),{short},{long})'"
        # JPEG-range sources (yuvj420p) stay full-range unless the range is converted.
        ":out_range=tv,format=yuv420p"
    )
    return [
        "-vf", scale, "-pix_fmt", "yuv420p", "-color_range", "tv",
        "-c:v", "libx264", "-preset", plan.preset, "-profile:v", "high",
        "-b:v", f"{plan.video_kbps}k",
        "-maxrate", f"{int(plan.video_kbps * MAXRATE_FACTOR)}k",
        "-bufsize", f"{plan.video_kbps * BUFSIZE_SECONDS}k",
    ]  # fmt: skip


def audio_args(plan: EncodePlan) -> list[str]:
    """AAC at the plan's rate, or no audio track at all."""
    if plan.audio_kbps is None:
        return ["-an"]
    return ["-c:a", "aac", "-b:a", f"{plan.audio_kbps}k"]


def _corrected(plan: EncodePlan, size: int, goal: int, duration: float) -> EncodePlan:
    """The plan with its video bitrate scaled by how far the video part missed its share."""
    fixed = container_overhead(duration) + (plan.audio_kbps or 0) * 1000 / 8 * duration
    wanted_video = goal * TARGET_FILL - fixed
    made_video = max(1.0, size - fixed)
    return replace(plan, video_kbps=max(1, int(plan.video_kbps * wanted_video / made_video)))
