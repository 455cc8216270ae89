"""FfmpegMedia on real files: what plays is kept as it is, the rest becomes H.264/AAC mp4."""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from bot.media import FfmpegMedia, probe, probe_with_thumbnail
from bot.model import FetchError, Reason
from bot.mp4 import Mp4Header, mp4_header

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def render(path: Path, video: list[str], audio: list[str] | None, size: str = "360x640") -> Path:
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=1.5"]  # fmt: skip
    if audio is not None:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=330:duration=1.5", *audio]
    cmd += [*video, "-t", "1.5", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def render_audio(path: Path) -> Path:
    cmd = [FFMPEG, "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
           "-i", "sine=duration=1", "-c:a", "aac", str(path)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def names_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


X264 = ["-c:v", "libx264", "-preset", "ultrafast"]
AAC = ["-c:a", "aac"]


@pytest.mark.parametrize(
    ("name", "video", "audio", "size", "action"),
    [
        ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime"], ["-c:a", "libopus"],
         "360x640", "re-encode"),
        ("jpeg-range.mp4", [*X264, "-pix_fmt", "yuvj420p"], AAC, "360x640", "re-encode"),
        ("yuv444.mp4", [*X264, "-pix_fmt", "yuv444p"], AAC, "360x640", "re-encode"),
        ("odd-size.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime"], None, "361x641",
         "re-encode"),
        ("mp3-audio.mp4", [*X264, "-pix_fmt", "yuv420p"], ["-c:a", "libmp3lame"], "360x640",
         "remux"),
        ("index-last.mp4", [*X264, "-pix_fmt", "yuv420p"], AAC, "360x640", "remux"),
    ],
)  # fmt: skip
async def test_unplayable_sources_become_h264_aac_faststart_mp4(
    tmp_path: Path, name: str, video: list[str], audio: list[str] | None, size: str, action: str
) -> None:
    source = render(tmp_path / name, video, audio, size)
    assert not probe(source).playable
    made, found = await FfmpegMedia(FFMPEG).playable(source, probe(source), tmp_path)
    assert made != source
    assert found == probe(made)
    assert found.playable
    assert found.vcodec == "h264"
    assert found.pix_fmt == "yuv420p"
    assert found.acodec == ("aac" if audio is not None else None)
    assert found.duration == pytest.approx(1.5, abs=0.1)
    width, height = (int(n) for n in size.split("x"))
    assert (found.width, found.height) == (width - width % 2, height - height % 2)
    if action == "remux":
        assert probe(source).vcodec == "h264"


async def test_a_playable_file_is_used_as_it_is(tmp_path: Path) -> None:
    source = render(
        tmp_path / "good.mp4", [*X264, "-pix_fmt", "yuv420p", "-movflags", "+faststart"], AAC
    )
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    made, found = await FfmpegMedia(FFMPEG).playable(source, probe(source), tmp_path)
    assert made == source
    assert found.playable
    assert hashlib.sha256(made.read_bytes()).hexdigest() == before
    assert names_in(tmp_path) == ["good.mp4"]


async def test_audio_only_is_not_a_video(tmp_path: Path) -> None:
    source = render_audio(tmp_path / "audio.m4a")
    with pytest.raises(FetchError) as caught:
        await FfmpegMedia(FFMPEG).playable(source, probe(source), tmp_path)
    assert caught.value.reason is Reason.NOT_A_VIDEO


async def test_garbage_is_not_a_video(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"<html>not a video</html>")
    with pytest.raises(FetchError) as caught:
        await FfmpegMedia(FFMPEG).playable(source, probe(source), tmp_path)
    assert caught.value.reason is Reason.NOT_A_VIDEO


async def test_thumbnail_is_a_small_jpeg(tmp_path: Path) -> None:
    source = render(tmp_path / "big.mp4", [*X264, "-pix_fmt", "yuv420p"], AAC, "1080x1920")
    thumbnail = await FfmpegMedia(FFMPEG).thumbnail(source, tmp_path)
    assert thumbnail is not None
    data = thumbnail.read_bytes()
    assert data.startswith(b"\xff\xd8")
    assert len(data) < 200_000
    found = probe(thumbnail)
    assert max(found.width, found.height) == 320


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


FTYP = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41")


def mvhd(version: int, timescale: int, duration: int) -> bytes:
    """A movie header box with the fields ISO 14496-12 puts before the ones read."""
    if version == 1:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    return box(b"mvhd", bytes([version, 0, 0, 0]) + times + bytes(80))


@pytest.mark.parametrize(
    ("movie", "expected"),
    [
        pytest.param(mvhd(0, 1000, 12_500), 12.5, id="version_0"),
        pytest.param(mvhd(1, 90_000, 90_000 * 3600), 3600.0, id="version_1"),
        pytest.param(mvhd(0, 1000, 0xFFFFFFFF), None, id="unknown_length"),
        pytest.param(mvhd(0, 0, 5), None, id="no_timescale"),
    ],
)
def test_the_movie_header_states_the_length(
    tmp_path: Path, movie: bytes, expected: float | None
) -> None:
    path = tmp_path / "made.mp4"
    path.write_bytes(FTYP + box(b"moov", movie) + box(b"mdat", bytes(64)))
    assert mp4_header(path) == Mp4Header(found=True, duration=expected)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x00\x00\x01ftyp\x00\x00", id="cut_in_a_large_size"),
        pytest.param(FTYP + b"\x00\x00\x00\x04moov", id="size_under_the_header"),
        pytest.param(FTYP + box(b"moov", b"\x00\x00\x00\x10mvhd\x01"), id="cut_in_mvhd"),
    ],
)
def test_a_broken_or_cut_file_gives_no_length(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(data)
    found = mp4_header(path)
    assert found is None or found.duration is None


def test_the_length_of_real_files_agrees_with_pyav(tmp_path: Path) -> None:
    """ffmpeg's files: faststart, also the first 64 KiB of it while it arrives; index last,
    whole and cut; fragmented (no length stated); webm (no mp4)."""
    faststart = render(tmp_path / "fast.mp4", [*X264, "-movflags", "+faststart"], AAC)
    index_last = render(tmp_path / "last.mp4", X264, AAC)
    fragmented = render(
        tmp_path / "frag.mp4", [*X264, "-movflags", "frag_keyframe+empty_moov"], AAC
    )
    webm = render(tmp_path / "clip.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime"], None)
    head = tmp_path / "head.mp4"
    head.write_bytes(faststart.read_bytes()[: 64 * 1024])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(index_last.read_bytes()[: index_last.stat().st_size // 2])

    for path in (faststart, head, index_last):
        found = mp4_header(path)
        assert found is not None
        assert found.found
        assert found.duration == pytest.approx(probe(faststart).duration, abs=0.05)
    assert mp4_header(cut) == Mp4Header(found=False, duration=None)
    assert mp4_header(fragmented) == Mp4Header(found=True, duration=None)
    assert mp4_header(webm) is None


@pytest.mark.parametrize(
    ("name", "video", "audio"),
    [
        ("h264.mp4", [*X264, "-pix_fmt", "yuv420p", "-movflags", "+faststart"], AAC),
        ("jpeg-range.mp4", [*X264, "-pix_fmt", "yuvj420p"], AAC),
        ("yuv444.mp4", [*X264, "-pix_fmt", "yuv444p"], AAC),
        ("hevc.mp4", ["-c:v", "libx265", "-preset", "ultrafast"], AAC),
        ("index-last.mp4", [*X264, "-pix_fmt", "yuv420p"], None),
        ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime"], ["-c:a", "libopus"]),
    ],
)
def test_the_probe_read_from_the_header_is_the_full_probe(
    tmp_path: Path, name: str, video: list[str], audio: list[str] | None
) -> None:
    """An mp4's probe comes from its header and first key frame, not PyAV's stream analysis:
    it must say what the full analysis says."""
    source = render(tmp_path / name, video, audio)
    quick, _ = probe_with_thumbnail(source, tmp_path / "thumb.jpg", 10**9)
    assert quick == probe(source)
