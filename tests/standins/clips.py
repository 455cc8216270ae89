"""Small real media files for tests (mp4 clips, JPEG slides, MP3 music), rendered with ffmpeg.

The stand-ins serve real files so that the bot's probing, format checks and uploads run
against the same kind of bytes TikTok sends (H.264 or HEVC tagged ``hvc1``, AAC, faststart).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

_VIDEO_ARGS = {
    "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    # TikTok's bytevc1 streams are HEVC in mp4 with the hvc1 sample entry, as Apple players need.
    "hevc": [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-tag:v",
        "hvc1",
        "-x265-params",
        "log-level=error",
    ],
}


@dataclass(frozen=True)
class Clip:
    """An mp4 on disk and what it contains (the values it was rendered with)."""

    path: Path
    width: int
    height: int
    duration: float
    vcodec: str
    has_audio: bool

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def make_clip(
    path: Path,
    *,
    duration: float = 2.0,
    width: int = 360,
    height: int = 640,
    codec: str = "h264",
    audio: bool = True,
    fps: int = 30,
    bitrate: str | None = None,
) -> Clip:
    """Render a clip to ``path``; codec is "h264" or "hevc", sizes must be even (yuv420p).

    ``bitrate`` (e.g. "30M") makes a constant-bitrate file of a predictable size.
    """
    if codec not in _VIDEO_ARGS:
        raise ValueError(f"codec must be one of {sorted(_VIDEO_ARGS)}, not {codec!r}")
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
    cmd = [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps}:duration={duration}",
    ]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration}"]
    cmd += _VIDEO_ARGS[codec]
    if bitrate is not None:
        # Constant bitrate with filler, so the file's size is what the test asked for.
        cmd += ["-b:v", bitrate, "-minrate", bitrate, "-maxrate", bitrate, "-bufsize", bitrate]
        if codec == "h264":
            cmd += ["-x264-params", "nal-hrd=cbr"]
    if audio:
        cmd += ["-c:a", "aac", "-b:a", "64k", "-ac", "2"]
    cmd += ["-t", str(duration), "-movflags", "+faststart", "-f", "mp4", str(path)]
    _run(cmd)
    return Clip(
        path=path,
        width=width,
        height=height,
        duration=duration,
        vcodec=codec,
        has_audio=audio,
    )


def make_image(
    path: Path,
    *,
    width: int = 1080,
    height: int = 1440,
    color: str | None = None,
    seed: int = 0,
) -> Path:
    """Render one baseline JPEG to ``path``, like the slides of a TikTok photo post.

    Without ``color`` it is a testsrc2 frame whose moment and hue come from ``seed``, so images
    made with different seeds differ; with ``color`` (an ffmpeg colour name or 0xRRGGBB) it is a
    plain fill. Full-range 4:2:0, as camera JPEGs are (decoders report ``yuvj420p``).
    """
    if width % 2 or height % 2:
        raise ValueError(f"4:2:0 JPEG needs even dimensions, got {width}x{height}")
    if color is None:
        source = [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate=1",
            "-ss",
            str(seed),
        ]
        filters = f"hue=h={seed * 67 % 360},scale=out_range=full"
    else:
        source = ["-f", "lavfi", "-i", f"color=c={color}:size={width}x{height}:duration=1"]
        filters = "scale=out_range=full"
    cmd = [
        *source,
        "-vf",
        filters,
        "-frames:v",
        "1",
        "-update",
        "1",
        "-c:v",
        "mjpeg",
        "-q:v",
        "4",
        "-pix_fmt",
        "yuv420p",
        "-color_range",
        "pc",
        "-f",
        "image2",
        str(path),
    ]
    _run(cmd)
    return path


def make_music(path: Path, *, duration: float, frequency: int = 523) -> Path:
    """Render a stereo 44.1 kHz 128 kbit/s MP3 sine tone to ``path``.

    MP3 because that is what a TikTok ``music.playUrl`` (``.../obj/...mp3``) serves.
    """
    cmd = [
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={frequency}:sample_rate=44100:duration={duration}",
        "-ac",
        "2",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
        "-f",
        "mp3",
        str(path),
    ]
    _run(cmd)
    return path


def _run(args: list[str]) -> None:
    """Run ffmpeg with ``args``, quiet but for errors, overwriting its output."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()}")
