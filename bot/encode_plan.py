"""The plan of a re-encode that fits a byte budget: output size, bitrates and x264 preset.

Pure arithmetic, without PyAV or ffmpeg: the download process (bot.download_process) checks with
it before any media request whether a clip could be sent at all. See bot.fit for the reasoning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The share of the budget the first encode aims at: the file must never pass 100% and should
# land above 85%; x264's one-pass ABR misses by a few percent either way.
TARGET_FILL = 0.93
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
