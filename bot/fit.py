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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bot.encode_plan import TARGET_FILL, EncodePlan, container_overhead, plan_encode
from bot.media import Probe, encoded_share, run_ffmpeg
from bot.media import probe as probe_file
from bot.model import FetchError, Reason
from bot.progress import Reporter, Stage

log = logging.getLogger(__name__)

# The first encode aims at TARGET_FILL of the budget (bot.encode_plan); it should land above
# MIN_FILL.
MIN_FILL = 0.85
MAX_RETRIES = 2
# VBV: short peaks up to 1.5x the average, smoothed over 2 s of video, so playback can start early.
MAXRATE_FACTOR = 1.5
BUFSIZE_SECONDS = 2


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
