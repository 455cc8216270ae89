"""What the bot writes: private directories, and no path made of names from the network.

The modes are checked on the real process run with umask 000, so every mode seen is one the bot
set, not the umask's luck.
"""

from __future__ import annotations

import asyncio
import signal
import stat
from pathlib import Path

from tests.harness import run_bot, running_bot, serving_env
from tests.standins.clips import Clip, make_image, make_music
from tests.standins.othersite import StreamableSite
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

TOKEN = "5550199:TEST-private-files-token"
POST = "7301234567890123477"
PHOTO = "7301234567890123478"
# Names a hostile page may carry: traversal, separators, NUL, a name longer than any file system's.
HOSTILE = "../../../../../../../../escaped/..\\x/\x00nul/" + "n" * 400


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def run_serving(
    tmp_path: Path, data_dir: Path, tiktok: TikTokStandIn, api: FakeBotApi
) -> asyncio.subprocess.Process:
    (tmp_path / "tmp").mkdir()
    env = serving_env(
        tmp_path, tiktok, telegram=api, DATA_DIR=str(data_dir), TMPDIR=str(tmp_path / "tmp")
    )
    return await run_bot(tmp_path, env, umask=0)


async def stop(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    return stderr.decode()


async def test_data_dir_job_dirs_media_cache_and_database_are_private(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    tiktok.add_video(POST, h264_clip)
    tiktok.media_delay_s = 1.0  # holds the job mid-download while its directory is looked at
    data = tmp_path / "data"
    async with FakeBotApi(token=TOKEN) as api:
        process = await run_serving(tmp_path, data, tiktok, api)
        try:
            api.inject_message(tiktok.post_url(POST))
            await tiktok.wait_for_media_request(within_s=60)
            [job] = (data / "jobs").iterdir()
            job_mode = mode(job)
            await api.wait_for_call("sendVideo", timeout=60)
        finally:
            await stop(process)
    assert job_mode == 0o700
    assert {p.name: mode(p) for p in (data, data / "jobs", data / "media")} == {
        "data": 0o700,
        "jobs": 0o700,
        "media": 0o700,
    }
    databases = {p.name: mode(p) for p in data.glob("cache.sqlite3*")}
    assert databases.get("cache.sqlite3") == 0o600
    assert set(databases.values()) == {0o600}  # the -wal and -shm files too
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_names_from_the_network_never_become_paths(
    tiktok: TikTokStandIn, h264_clip: Clip, tall_clip: Clip, tmp_path: Path
) -> None:
    """A TikTok video, a TikTok photo post and a Streamable video whose author, title and
    description are hostile paths: every file the bot wrote stays in DATA_DIR (deep enough
    that eight `..` stay in tmp_path, where they would be seen), and the job directories are
    empty afterwards. In-process (the guard's DNS boundary is a table for Streamable's hosts)."""
    tiktok.add_video(POST, h264_clip, author=HOSTILE[:60], nickname=HOSTILE, desc=HOSTILE)
    # A photo post goes through gallery-dl, whose file names come from a format string.
    images = [
        make_image(tmp_path / f"slide{n}.jpeg", width=320, height=480, seed=n) for n in (1, 2)
    ]
    music = make_music(tmp_path / "music.mp3", duration=1.0)
    tiktok.add_photo_post(PHOTO, images, music, author=HOSTILE[:60], nickname=HOSTILE, desc=HOSTILE)
    streamable = StreamableSite.attach(tiktok)
    other = streamable.add_other_video("evil1", tall_clip, title=HOSTILE, uploader=HOSTILE)
    data = tmp_path.joinpath(*"abcdefghij") / "data"
    before = set(tmp_path.rglob("*"))
    async with (
        FakeBotApi(token=TOKEN) as api,
        running_bot(tiktok, data, telegram=api, allowed_sites=("TikTok", "Streamable")),
    ):
        api.inject_message(f"{tiktok.post_url(POST)} {other} {tiktok.photo_url(PHOTO)}")
        await api.wait_for_call("sendVideo", count=2, timeout=60)
        await api.wait_for_call("sendAudio", timeout=60)
    written = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    outside = sorted(str(p) for p in written if not p.is_relative_to(data))
    assert outside == []
    assert list((data / "jobs").iterdir()) == []
    assert {p.parent for p in written} <= {data, data / "media"}
    assert all(len(p.name) < 100 and "escaped" not in p.name for p in written)
