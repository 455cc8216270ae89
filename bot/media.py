"""Probe a download and make it play everywhere: H.264 yuv420p, AAC, mp4 with +faststart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import av

from bot.model import Album, Audio, ClipInfo, FetchError, Reason
from bot.mp4 import boxes_after_ftyp
from bot.progress import Progress, Reporter, Stage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Probe:
    """What a media file holds, as far as playback on chat clients cares."""

    is_mp4: bool
    vcodec: str | None
    pix_fmt: str | None
    width: int
    height: int
    duration: float
    acodec: str | None
    faststart: bool
    size: int
    # Average frames per second of the video; 0 when the file does not say.
    fps: float

    @property
    def playable(self) -> bool:
        return (
            self.is_mp4
            and self.vcodec == "h264"
            and self.pix_fmt == "yuv420p"
            and self.acodec in (None, "aac")
            and self.faststart
        )


def _index_first(path: Path) -> bool | None:
    """Whether an mp4's index (moov) comes before its media (mdat), so clients can play while
    downloading; None when the file is no mp4 (its first box is no ftyp)."""
    with path.open("rb") as f:
        boxes = boxes_after_ftyp(f)
        if boxes is None:
            return None
        for kind, _, _ in boxes:
            if kind in (b"moov", b"mdat"):
                return kind == b"moov"
    return False


def probe(path: Path) -> Probe:
    """Read codec, pixel format, size and duration with PyAV (no subprocess)."""
    try:
        with av.open(str(path)) as container:
            return _probe_open(path, container)
    except (av.error.FFmpegError, OSError) as err:
        raise FetchError(Reason.NOT_A_VIDEO, f"probe failed: {err}") from None


# An mp4 states its streams in its header: PyAV need not decode a second of packets to learn
# them (~4 ms a clip). Only the pixel format is left out: the first key frame tells it.
_HEADER_ONLY = {"probesize": "32", "analyzeduration": "0"}


def probe_with_thumbnail(path: Path, target: Path, budget_bytes: int) -> tuple[Probe, Path | None]:
    """The probe of `path` and, when the file is sent as it is (it plays everywhere and fits
    `budget_bytes`), its thumbnail in `target`, both from one opening of the file: one thread
    hop on the way to a clip's reply instead of two. An mp4 is read by its header, and its
    first key frame, decoded for the thumbnail, gives the pixel format."""
    try:
        index_first = _index_first(path)
        options = _HEADER_ONLY if index_first is not None else {}
        with av.open(str(path), options=options) as container:
            found = _probe_open(path, container, index_first=index_first)
            frame: av.VideoFrame | None = None
            if found.vcodec is not None and found.pix_fmt is None:
                with contextlib.suppress(*_THUMBNAIL_ERRORS):
                    frame = _first_key_frame(container)
                if frame is not None:
                    found = replace(found, pix_fmt=frame.format.name)
            if not (found.playable and found.size <= budget_bytes):
                return found, None
            try:
                _write_jpeg(frame or _first_key_frame(container), target)
            except _THUMBNAIL_ERRORS as err:
                log.info("no thumbnail: %r", err)
                return found, None
    except (av.error.FFmpegError, OSError) as err:
        raise FetchError(Reason.NOT_A_VIDEO, f"probe failed: {err}") from None
    return found, target if target.stat().st_size < THUMBNAIL_MAX_BYTES else None


def _probe_open(
    path: Path, container: av.container.InputContainer, *, index_first: bool | None = None
) -> Probe:
    """`index_first` is `_index_first(path)` when the caller knows it already."""
    video = next(iter(container.streams.video), None)
    audio = next(iter(container.streams.audio), None)
    duration = 0.0
    if container.duration:
        duration = container.duration / av.time_base
    elif video is not None and video.duration and video.time_base:
        duration = float(video.duration * video.time_base)
    rate = (video.average_rate or video.guessed_rate) if video is not None else None
    format_names = set(container.format.name.split(","))
    return Probe(
        is_mp4="mp4" in format_names and path.suffix == ".mp4",
        vcodec=video.codec_context.name if video is not None else None,
        pix_fmt=video.codec_context.format.name
        if video is not None and video.codec_context.format is not None
        else None,
        width=video.codec_context.width if video is not None else 0,
        height=video.codec_context.height if video is not None else 0,
        duration=duration,
        acodec=audio.codec_context.name if audio is not None else None,
        faststart="mp4" in format_names
        and bool(_index_first(path) if index_first is None else index_first),
        size=path.stat().st_size,
        fps=float(rate) if rate else 0.0,
    )


SLIDE_MIN_S = 2.0
SLIDESHOW_MAX_SIDE = 1080
THUMBNAIL_SIDE = 320


def _even_within(width: int, height: int, short_side: int) -> tuple[int, int]:
    """The shape scaled so its short side is at most `short_side`, both sides even."""
    scale = min(1.0, short_side / max(1, min(width, height)))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _concat_quote(path: Path) -> str:
    return str(path.resolve()).replace("'", "'\\''")


THUMBNAIL_MAX_BYTES = 200_000


_THUMBNAIL_ERRORS = (av.error.FFmpegError, OSError, StopIteration, ValueError, IndexError)


def _write_thumbnail(video: Path, target: Path) -> None:
    """Decode one key frame and encode it as JPEG in-process (5 ms; spawning ffmpeg costs 50)."""
    with av.open(str(video)) as container:
        _write_jpeg(_first_key_frame(container), target)


def _first_key_frame(container: av.container.InputContainer) -> av.VideoFrame:
    stream = container.streams.video[0]
    stream.codec_context.skip_frame = "NONKEY"
    # One key frame: threads would only add their start-up and their frame buffers.
    stream.codec_context.thread_count = 1
    return next(container.decode(stream))


def _write_jpeg(frame: av.VideoFrame, target: Path) -> None:
    """The frame as a JPEG of at most THUMBNAIL_SIDE px a side."""
    scale = min(1.0, THUMBNAIL_SIDE / max(frame.width, frame.height))
    width, height = max(2, round(frame.width * scale)), max(2, round(frame.height * scale))
    encoder = av.CodecContext.create("mjpeg", "w")
    # One small picture: threads of their own (here and in the scaler) would be started and
    # ended for each thumbnail.
    encoder.thread_count = 1
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    small = frame.reformat(width=width, height=height, format="yuvj420p", threads=1)
    packets = [*encoder.encode(small), *encoder.encode(None)]
    target.write_bytes(b"".join(bytes(packet) for packet in packets))


# PyAV work at once: 40 clips probed in 6 threads grew the process by ~25 MiB (in 1: ~3 MiB);
# 2 instead of 1 made bench.boundary's bursts no faster and the process 3 MiB larger.
INSPECT_THREADS = 1
_R = TypeVar("_R")


class FfmpegMedia:
    """Turns a download into a playable mp4 with a thumbnail, using the ffmpeg binary."""

    def __init__(self, ffmpeg_path: str, *, threads: int = INSPECT_THREADS) -> None:
        self._ffmpeg = ffmpeg_path
        self._in_process = asyncio.Semaphore(threads)

    async def _in_thread(self, work: Callable[..., _R], *args: Any) -> _R:
        """In-process media work (PyAV) in a thread, at most `threads` at a time: each decoder
        holds frame buffers of its own, and many at once grow the process for good."""
        async with self._in_process:
            return await asyncio.to_thread(work, *args)

    async def playable(
        self, source: Path, found: Probe, workdir: Path, *, progress: Reporter | None = None
    ) -> tuple[Path, Probe]:
        """The source itself when it already plays everywhere, else a remux or re-encode;
        `found` is the source's probe, which the caller has made already. A re-encode reports
        how far it has come to `progress` (CONVERTING)."""
        if found.vcodec is None:
            raise FetchError(Reason.NOT_A_VIDEO, "no video stream")
        if found.playable:
            return source, found
        target = workdir / "playable.mp4"
        video_ok = found.vcodec == "h264" and found.pix_fmt == "yuv420p"
        if video_ok:
            video_args = ["-c:v", "copy"]
        else:
            video_args = [
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                "-profile:v", "high", "-pix_fmt", "yuv420p",
                # JPEG-range sources (yuvj420p) stay full-range unless the range is converted.
                "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2:out_range=tv,format=yuv420p",
                "-color_range", "tv",
            ]  # fmt: skip
        audio_args = ["-c:a", "copy"] if found.acodec == "aac" else ["-c:a", "aac", "-b:a", "128k"]
        log.info(
            "making playable: %s/%s/%s -> %s",
            found.vcodec,
            found.pix_fmt,
            found.acodec,
            "remux" if video_ok else "re-encode",
        )
        on_time = (
            None
            if video_ok or progress is None
            else encoded_share(progress, found.duration, Stage.CONVERTING)
        )
        await run_ffmpeg(
            self._ffmpeg,
            "-i", str(source), "-map", "0:v:0", "-map", "0:a:0?", *video_args, *audio_args,
            "-movflags", "+faststart", "-f", "mp4", str(target),
            on_time=on_time,
        )  # fmt: skip
        made = await self._in_thread(probe, target)
        if not made.playable:
            raise FetchError(Reason.FAILED, f"still not playable after ffmpeg: {made}")
        return target, made

    async def inspect(
        self, source: Path, workdir: Path, budget_bytes: int
    ) -> tuple[Probe, Path | None]:
        """The source's probe, with its thumbnail when it is sent as it is (see
        `probe_with_thumbnail`); else the thumbnail is for what is made of it."""
        return await self._in_thread(
            probe_with_thumbnail, source, workdir / "thumb.jpg", budget_bytes
        )

    async def thumbnail(self, video: Path, workdir: Path) -> Path | None:
        """A JPEG of the first key frame, at most 320 px a side; None when it cannot be made."""
        target = workdir / "thumb.jpg"
        try:
            await self._in_thread(_write_thumbnail, video, target)
        except _THUMBNAIL_ERRORS as err:
            log.info("no thumbnail: %r", err)
            return None
        return target if target.stat().st_size < THUMBNAIL_MAX_BYTES else None

    async def slideshow_video(self, album: Album, workdir: Path) -> Path:
        """One video of the album: each image an equal share of the music (at least
        SLIDE_MIN_S), all letterboxed to the first image's shape, the music underneath."""
        if not album.images:
            raise FetchError(Reason.NOT_A_VIDEO, "a photo post without images")
        music = await self._in_thread(probe, album.audio) if album.audio else None
        first = await self._in_thread(probe, album.images[0])
        slide_s = max(SLIDE_MIN_S, (music.duration if music else 0.0) / len(album.images))
        total_s = slide_s * len(album.images)
        width, height = _even_within(first.width, first.height, SLIDESHOW_MAX_SIDE)
        listing = workdir / "slides.txt"
        entries = [
            f"file '{_concat_quote(image)}'\nduration {slide_s:.3f}" for image in album.images
        ]
        # The concat demuxer takes the last entry's duration only when the file is listed again.
        entries.append(f"file '{_concat_quote(album.images[-1])}'")
        listing.write_text("\n".join(entries) + "\n")
        target = workdir / "slideshow.mp4"
        audio_in = ["-i", str(album.audio)] if album.audio else []
        audio_out = ["-map", "1:a:0", "-c:a", "aac", "-b:a", "128k"] if album.audio else []
        await self._run(
            "-f", "concat", "-safe", "0", "-i", str(listing), *audio_in,
            "-map", "0:v:0",
            "-vf", f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
                   f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,"
                   "scale=out_range=tv,format=yuv420p,fps=30",
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "23",
            "-color_range", "tv", *audio_out,
            "-t", f"{total_s:.3f}", "-movflags", "+faststart", "-f", "mp4", str(target),
        )  # fmt: skip
        return target

    async def sound(self, source: Path, info: ClipInfo, workdir: Path) -> Audio:
        """The source's audio alone in an .m4a: the AAC stream copied as served (re-encoded to
        AAC only when it is something else), its metadata replaced by the sound's title and
        artist."""
        found = await self._in_thread(probe, source)
        if found.acodec is None:
            raise FetchError(Reason.NO_SOUND, "no audio stream")
        target = workdir / "sound.m4a"
        codec = ["-c:a", "copy"] if found.acodec == "aac" else ["-c:a", "aac", "-b:a", "128k"]
        tags = [
            *(["-metadata", f"title={info.music_title}"] if info.music_title else []),
            *(["-metadata", f"artist={info.music_author}"] if info.music_author else []),
        ]
        await self._run(
            "-i", str(source), "-map", "0:a:0", "-vn", *codec,
            "-map_metadata", "-1", "-map_metadata:s:a", "-1", *tags,
            "-movflags", "+faststart", "-f", "ipod", str(target),
        )  # fmt: skip
        made = await self._in_thread(probe, target)
        return Audio(path=target, duration=made.duration, size=made.size, info=info)

    async def _run(self, *args: str) -> None:
        await run_ffmpeg(self._ffmpeg, *args)


_AUDIO_SUFFIXES = frozenset({".m4a", ".mp3", ".ogg", ".opus", ".aac"})


def audio_suffix(path: Path) -> str:
    """The file name ending an audio file is uploaded with: its own when it names an audio
    type, else told from its first bytes (a media store keeps files without one); .m4a when
    nothing else fits."""
    if path.suffix.lower() in _AUDIO_SUFFIXES:
        return path.suffix.lower()
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(b"ID3"):
        return ".mp3"
    if head.startswith(b"OggS"):
        return ".ogg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # A frame sync: ADTS (layer bits 00) is raw AAC, the others MPEG audio.
        return ".aac" if head[1] & 0x06 == 0 else ".mp3"
    return ".m4a"


def encoded_share(
    progress: Reporter, duration: float, stage: Stage, budget_bytes: int | None = None
) -> Callable[[float], None]:
    """An `on_time` for run_ffmpeg: seconds encoded as the `stage`'s share of `duration`."""

    def report(seconds: float) -> None:
        share = min(1.0, seconds / duration) if duration > 0 else None
        progress(Progress(stage, share, budget_bytes))

    return report


async def run_ffmpeg(
    ffmpeg: str, *args: str, on_time: Callable[[float], None] | None = None
) -> None:
    """Run ffmpeg to the end; kill it when the task is cancelled. `on_time` hears how many
    seconds of the output are done, from ffmpeg's `-progress` lines, as they come."""
    watched = ["-progress", "pipe:1", "-nostats"] if on_time is not None else []
    process = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *watched, *args,
        stdout=asyncio.subprocess.PIPE if on_time else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        if on_time is None or process.stdout is None or process.stderr is None:
            _, stderr = await process.communicate()
        else:
            # Both pipes read at once: a full stderr pipe would stop ffmpeg, and its progress.
            errors = asyncio.ensure_future(process.stderr.read())
            try:
                async for line in process.stdout:
                    seconds = _out_time_s(line)
                    if seconds is not None:
                        on_time(seconds)
                stderr = await errors
                await process.wait()
            finally:
                errors.cancel()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0:
        raise FetchError(Reason.FAILED, f"ffmpeg: {stderr.decode(errors='replace')[-500:]}")


def _out_time_s(line: bytes) -> float | None:
    """The seconds of output done, from a `-progress` line `out_time_us=` (`out_time_ms=` is
    microseconds too, an old ffmpeg slip kept for compatibility); None for other lines."""
    key, _, value = line.strip().partition(b"=")
    if key not in (b"out_time_us", b"out_time_ms"):
        return None
    try:
        return max(0, int(value)) / 1_000_000
    except ValueError:
        return None  # "N/A" before the first frame
