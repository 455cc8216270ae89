"""`python -m bot doctor` as a real process against the stand-ins: all healthy, then one broken
part at a time, each named by its own FAIL line (or a warn that does not fail the run)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import bot_env, run_bot
from tests.redis_server import RedisServer
from tests.standins.clips import Clip, make_image, make_music
from tests.standins.discord_api import FakeDiscord
from tests.standins.pypi import FakePyPI
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import Fault, TikTokStandIn

TOKEN = "424242:TEST-doctor-token-secret"
VIDEO = "7301234567890100001"
PHOTO = "7301234567890100002"
CHALLENGED = "7301234567890100003"
PRIVATE = "7301234567890100004"
YT_DLP = importlib.metadata.version("yt-dlp")
GALLERY_DL = importlib.metadata.version("gallery-dl")
ORDER = [
    "ffmpeg",
    "yt-dlp",
    "gallery-dl",
    "impersonation",
    "data dir",
    "telegram",
    "telegram webhook",
    "telegram storage chat",
    "discord",
    "redis",
    "proxy",
    "cookies",
    "canary",
    "canary",
]
UPDATE = f"{Path(sys.executable).parent / 'pip'} install -U 'yt-dlp[default,curl-cffi]' gallery-dl"


STORAGE = -1001234500000


def post_url(post: str) -> str:
    return f"https://www.tiktok.com/@doc/video/{post}"


def photo_url(post: str) -> str:
    return f"https://www.tiktok.com/@doc/photo/{post}"


def ytdlp_date(version: str) -> dt.date:
    year, month, day = (int(part) for part in version.split(".")[:3])
    return dt.date(year, month, day)


def ytdlp_age_days() -> int:
    return (dt.datetime.now(dt.UTC).date() - ytdlp_date(YT_DLP)).days


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("slides")
    return [make_image(folder / f"{n}.jpeg", width=360, height=480, seed=n) for n in range(3)]


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_music(tmp_path_factory.mktemp("music") / "music.mp3", duration=2.0)


@pytest.fixture
async def tiktok(h264_clip: Clip, slides: list[Path], music: Path) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(VIDEO, h264_clip, author="doc")
        tt.add_photo_post(PHOTO, slides, music, author="doc")
        tt.add_video(CHALLENGED, h264_clip, author="doc")
        tt.add_status(PRIVATE, 10216)
        yield tt


@pytest.fixture
async def index() -> AsyncIterator[FakePyPI]:
    """The index lists the installed versions as the newest."""
    async with FakePyPI() as pypi:
        pypi.add_release("yt-dlp", "2026.10.26", uploaded="2026-10-26T18:00:00Z")
        yt_dlp_uploaded = dt.datetime.combine(ytdlp_date(YT_DLP), dt.time(20, 0), dt.UTC)
        pypi.add_release("yt-dlp", YT_DLP, uploaded=yt_dlp_uploaded)
        pypi.add_release("gallery-dl", "1.30.0", uploaded="2025-07-01T10:00:00Z")
        pypi.add_release("gallery-dl", GALLERY_DL, uploaded="2026-11-20T10:00:00Z")
        yield pypi


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(token=TOKEN, bot_username="doctor_test_bot") as server:
        yield server


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on (held bound, not listening, so no other test takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def base_env(tmp_path: Path, index: FakePyPI, api: FakeBotApi, **extra: str) -> dict[str, str]:
    """A deployment with Telegram and nothing else to check: no proxy, no Redis, no canaries.
    Tests add the part they look at."""
    platform = {"TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_URL": api.root}
    # No canaries unless a test names some: the default ones are on the internet.
    return bot_env(
        tmp_path, **{**platform, "PACKAGE_INDEX_URL": index.url, "CANARY_URLS": ",", **extra}
    )


def fetching_env(tiktok: TikTokStandIn, *canaries: str) -> dict[str, str]:
    return {
        "DOWNLOAD_PROXY": tiktok.proxy_url,
        "DOWNLOAD_VERIFY_TLS": "false",
        "DOWNLOAD_TIMEOUT_S": "30",
        "CANARY_URLS": " ".join(canaries),
    }


async def doctor(tmp_path: Path, env: dict[str, str]) -> tuple[int | None, list[str], str]:
    process = await run_bot(tmp_path, env, "doctor")
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    return process.returncode, stdout.decode().splitlines(), stderr.decode()


def status_and_name(line: str) -> tuple[str, str]:
    status, rest = line[:4].strip(), line[6:]
    name = next((n for n in sorted(set(ORDER), key=len, reverse=True) if rest.startswith(n)), "")
    return status.strip(), name


def failed(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


def the_line(lines: list[str], name: str) -> str:
    [line] = [line for line in lines if status_and_name(line)[1] == name]
    return line


async def test_a_healthy_deployment_passes_every_check(
    tmp_path: Path,
    index: FakePyPI,
    api: FakeBotApi,
    discord_api: FakeDiscord,
    tiktok: TikTokStandIn,
    redis_server: RedisServer,
    h264_clip: Clip,
) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n"
        ".tiktok.com\tTRUE\t/\tTRUE\t2000000000\tsessionid\tabc123\n"
        ".tiktok.com\tTRUE\t/\tTRUE\t2000000000\ttt_chain_token\txyz\n"
    )
    cookies.chmod(0o600)
    api.add_chat(STORAGE, "channel", title="Reshare storage")
    env = base_env(
        tmp_path,
        index,
        api,
        TELEGRAM_STORAGE_CHAT_ID=str(STORAGE),
        DISCORD_BOT_TOKEN=discord_api.token,
        DISCORD_API_URL=discord_api.api_url,
        REDIS_URL=redis_server.url,
        DOWNLOAD_COOKIES_FILE=str(cookies),
        **fetching_env(tiktok, post_url(VIDEO), photo_url(PHOTO)),
    )
    code, lines, stderr = await doctor(tmp_path, env)
    output = "\n".join(lines)
    assert code == 0, output + stderr
    assert [status_and_name(line) for line in lines] == [("ok", name) for name in ORDER], output
    age = ytdlp_age_days()
    assert f"ok    yt-dlp {YT_DLP} ({age} days old), the newest on 127.0.0.1:" in output
    assert re.search(rf"^ok    gallery-dl {GALLERY_DL} \(\d+ days old\), the newest", output, re.M)
    assert "ok    impersonation TikTok pages are fetched impersonating chrome-" in output
    assert f"ok    data dir {tmp_path / 'data'} is writable (mode 700)" in lines
    assert f"ok    telegram @doctor_test_bot (id 424242) via {api.root}" in lines
    assert "ok    telegram webhook none: the bot polls (getUpdates); 0 updates pending" in lines
    assert f"ok    discord reshare#0001 (id {discord_api.bot_user_id}) via" in output
    assert re.search(
        r"^ok    redis redis://127\.0\.0\.1:\d+/0 answers PING \(Redis \d", output, re.M
    )
    assert f"ok    cookies {cookies}: 2 cookies for .tiktok.com" in lines
    assert f"ok    proxy {tiktok.proxy_url} opens a tunnel to www.tiktok.com:443 (200 " in output
    size = h264_clip.path.stat().st_size / 1e6
    video = rf"ok    canary {re.escape(post_url(VIDEO))}: video 360x640 2\.0 s, {size:.1f} MB in "
    assert re.search(video + r"\d+\.\d s$", output, re.M), output
    photo = rf"ok    canary {re.escape(photo_url(PHOTO))}: photo post: 3 images \+ music in "
    assert re.search(photo + r"\d+\.\d s$", output, re.M), output
    for secret in (TOKEN, TOKEN.split(":")[1], discord_api.token):
        assert secret not in output + stderr
    assert list((tmp_path / "data").iterdir()) == []


async def test_a_newer_yt_dlp_on_the_index_fails_with_the_update_command(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi
) -> None:
    newer = (ytdlp_date(YT_DLP) + dt.timedelta(days=9)).strftime("%Y.%m.%d")
    index.add_release("yt-dlp", newer, uploaded=dt.datetime.now(dt.UTC))
    code, lines, _ = await doctor(tmp_path, base_env(tmp_path, index, api))
    assert code == 1
    age = ytdlp_age_days()
    expected = f"FAIL  yt-dlp {YT_DLP} ({age} days old); {newer} is out: run {UPDATE} and restart"
    assert failed(lines) == [expected], lines


async def test_an_unreachable_index_is_a_warning_judged_by_age(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, closed_port: int
) -> None:
    env = base_env(tmp_path, index, api, PACKAGE_INDEX_URL=f"http://127.0.0.1:{closed_port}/pypi")
    code, lines, stderr = await doctor(tmp_path, env)
    not_reachable = f"the index 127.0.0.1:{closed_port} is not reachable ("
    yt_dlp_line, gallery_dl_line = the_line(lines, "yt-dlp"), the_line(lines, "gallery-dl")
    assert not_reachable in yt_dlp_line
    assert gallery_dl_line.startswith(f"warn  gallery-dl {GALLERY_DL}; {not_reachable}")
    if ytdlp_age_days() > 60:  # the installed yt-dlp is old enough to fail on age alone
        assert failed(lines) == [yt_dlp_line]
        return
    assert code == 0, "\n".join(lines) + stderr
    assert yt_dlp_line.startswith(f"warn  yt-dlp {YT_DLP} ({ytdlp_age_days()} days old); ")
    assert yt_dlp_line.endswith("so not compared with the newest")
    assert failed(lines) == []


@pytest.mark.parametrize("broken", ["no libx264", "missing"])
async def test_an_ffmpeg_without_libx264_or_none_at_all_fails(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, broken: str
) -> None:
    exe = tmp_path / "ffmpeg"
    if broken == "no libx264":
        exe.write_text(
            "#!/bin/sh\n"
            'case "$*" in\n'
            '  *-version*) echo "ffmpeg version 6.1-stripped Copyright";;\n'
            "  *-encoders*) printf 'Encoders:\\n V....D mpeg4  MPEG-4 part 2\\n"
            " A....D aac  AAC (Advanced Audio Coding)\\n';;\n"
            "esac\n"
        )
        exe.chmod(0o755)
    env = base_env(tmp_path, index, api, IMAGEIO_FFMPEG_EXE=str(exe))
    code, lines, _ = await doctor(tmp_path, env)
    assert code == 1
    chosen = f"{exe} (set by IMAGEIO_FFMPEG_EXE)"
    fix = "unset IMAGEIO_FFMPEG_EXE to use the bundled one"
    if broken == "no libx264":
        expected = (
            f"FAIL  ffmpeg {chosen} has no libx264 encoder, so videos cannot be made H.264: {fix}"
        )
    else:
        expected = f"FAIL  ffmpeg {chosen} does not run (No such file or directory): {fix}"
    assert failed(lines) == [expected]


async def test_a_data_dir_that_takes_no_files_fails(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi
) -> None:
    if os.geteuid() == 0:
        # root writes through any mode: a path under a regular file cannot be made by anyone.
        (tmp_path / "a-file").write_text("")
        data_dir, why = tmp_path / "a-file" / "data", "Not a directory"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        data_dir, why = locked / "data", "Permission denied"
    try:
        code, lines, _ = await doctor(
            tmp_path, base_env(tmp_path, index, api, DATA_DIR=str(data_dir))
        )
    finally:
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o700)
    assert code == 1
    assert failed(lines) == [
        f"FAIL  data dir {data_dir} is not writable ({why}): the bot keeps its journal, cache "
        "and job files there; make it a directory of the bot's user with mode 700"
    ]


async def test_refused_tokens_fail_and_are_never_printed(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, discord_api: FakeDiscord
) -> None:
    wrong_telegram = "424242:TEST-wrong-telegram-token"
    wrong_discord = "MTMwMDAwMDAwMDAwMDAwMDAwMQ.GfAkE0.a-wrong-discord-token"
    env = base_env(
        tmp_path,
        index,
        api,
        TELEGRAM_BOT_TOKEN=wrong_telegram,
        DISCORD_BOT_TOKEN=wrong_discord,
        DISCORD_API_URL=discord_api.api_url,
        LOG_LEVEL="DEBUG",
    )
    code, lines, stderr = await doctor(tmp_path, env)
    assert code == 1
    assert failed(lines) == [
        f"FAIL  telegram token refused (Unauthorized) via {api.root}: copy it again from "
        "@BotFather (/token) into TELEGRAM_BOT_TOKEN",
        f"FAIL  discord token refused (401 Unauthorized) via {discord_api.api_url}: copy it "
        "again from the Developer Portal (Bot > Reset Token) into DISCORD_BOT_TOKEN",
    ]
    assert "telegram webhook" not in "\n".join(lines)
    output = "\n".join(lines) + stderr
    for secret in (wrong_telegram, "TEST-wrong-telegram-token", wrong_discord):
        assert secret not in output


@pytest.mark.parametrize(
    ("configured", "registered", "expected"),
    [
        (
            "https://bot.example.org/telegram/updates",
            "http://127.0.0.1:9/elsewhere",
            "FAIL  telegram webhook Telegram posts updates to http://127.0.0.1:9/elsewhere, not "
            "to TELEGRAM_WEBHOOK_URL https://bot.example.org/telegram/updates: another "
            "deployment uses this token, or no receiver started since the URL changed (a "
            "receiver sets it at start); 0 updates pending",
        ),
        (
            "https://bot.example.org/telegram/updates",
            None,
            "ok    telegram webhook not set yet, the receiver sets it at start "
            "(https://bot.example.org/telegram/updates); 0 updates pending",
        ),
        (
            None,
            "http://127.0.0.1:9/elsewhere",
            "ok    telegram webhook http://127.0.0.1:9/elsewhere is set, but TELEGRAM_WEBHOOK_URL "
            "is not: the bot deletes it at start and polls (updates waiting are kept); 0 "
            "updates pending",
        ),
    ],
)
async def test_the_webhook_is_compared_with_what_the_bot_does_at_start(
    tmp_path: Path,
    index: FakePyPI,
    api: FakeBotApi,
    configured: str | None,
    registered: str | None,
    expected: str,
) -> None:
    if registered is not None:
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{api.base_url}{api.token}/setWebhook", json={"url": registered}
            )
            assert answer.json()["ok"], answer.text
    webhook = (
        {"TELEGRAM_WEBHOOK_URL": configured, "TELEGRAM_WEBHOOK_SECRET": "doctor-secret"}
        if configured
        else {}
    )
    code, lines, _ = await doctor(tmp_path, base_env(tmp_path, index, api, **webhook))
    assert the_line(lines, "telegram webhook") == expected
    assert code == (1 if expected.startswith("FAIL") else 0)
    assert "doctor-secret" not in "\n".join(lines)


async def test_a_webhook_that_telegram_cannot_reach_is_a_warning_with_its_last_error(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, closed_port: int
) -> None:
    hook = f"http://127.0.0.1:{closed_port}/telegram/updates"
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{api.base_url}{api.token}/setWebhook", json={"url": hook})
        assert answer.json()["ok"], answer.text
    api.inject_message("hello")
    await api.wait_for_deliveries(1)
    env = base_env(
        tmp_path, index, api, TELEGRAM_WEBHOOK_URL=hook, TELEGRAM_WEBHOOK_SECRET="doctor-secret"
    )
    code, lines, _ = await doctor(tmp_path, env)
    assert code == 0, lines
    line = the_line(lines, "telegram webhook")
    assert re.fullmatch(
        rf"warn  telegram webhook {re.escape(hook)}; 1 update pending; last delivery failed "
        r"\d+ s ago: Connection refused",
        line,
    ), line


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("member", "the bot is member, not an administrator that may post messages"),
        ("left", "not usable"),
    ],
)
async def test_a_storage_chat_the_bot_cannot_post_in_fails(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, status: str, expected: str
) -> None:
    api.add_chat(STORAGE, "channel", title="Reshare storage", bot_status=status)
    env = base_env(tmp_path, index, api, TELEGRAM_STORAGE_CHAT_ID=str(STORAGE))
    code, lines, _ = await doctor(tmp_path, env)
    line = the_line(lines, "telegram storage chat")
    assert code == 1
    assert line.startswith("FAIL  telegram storage chat")
    assert expected in line


async def test_an_unreachable_redis_fails_without_showing_its_password(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, closed_port: int
) -> None:
    url = f"redis://:redis-password-1@127.0.0.1:{closed_port}/0"
    code, lines, stderr = await doctor(tmp_path, base_env(tmp_path, index, api, REDIS_URL=url))
    assert code == 1
    [line] = failed(lines)
    assert line.startswith(
        f"FAIL  redis redis://127.0.0.1:{closed_port}/0 not reachable: ConnectionError: "
    ), line
    assert "redis-password-1" not in "\n".join(lines) + stderr


async def test_an_unreachable_proxy_fails_without_showing_its_credentials(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, closed_port: int
) -> None:
    proxy = f"http://someone:proxy-password-1@127.0.0.1:{closed_port}"
    env = base_env(tmp_path, index, api, DOWNLOAD_PROXY=proxy)
    code, lines, stderr = await doctor(tmp_path, env)
    assert code == 1
    assert failed(lines) == [
        f"FAIL  proxy http://127.0.0.1:{closed_port} not reachable: Connection refused"
    ]
    assert "proxy-password-1" not in "\n".join(lines) + stderr


async def test_a_silent_proxy_does_not_hang_the_doctor(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi
) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the CONNECT, answers nothing until the client goes
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        env = base_env(tmp_path, index, api, DOWNLOAD_PROXY=f"http://127.0.0.1:{port}")
        code, lines, _ = await doctor(tmp_path, env)
    finally:
        server.close()
        await server.wait_closed()
    assert code == 1
    assert failed(lines) == [f"FAIL  proxy http://127.0.0.1:{port} gave no answer within 5 s"]


@pytest.mark.parametrize("download_process", ["false", "true"])
async def test_a_failing_canary_says_what_yt_dlp_said_and_how_long_it_took(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, tiktok: TikTokStandIn, download_process: str
) -> None:
    tiktok.inject(Fault.CHALLENGE, post_id=CHALLENGED, times=None)
    env = base_env(
        tmp_path,
        index,
        api,
        DOWNLOAD_PROCESS=download_process,
        **fetching_env(tiktok, post_url(CHALLENGED), post_url(PRIVATE)),
    )
    code, lines, _ = await doctor(tmp_path, env)
    assert code == 1
    challenged, private = failed(lines)
    assert re.fullmatch(
        rf"FAIL  canary {re.escape(post_url(CHALLENGED))}: BLOCKED after \d+\.\d s: "
        rf"ERROR: \[TikTok\] {CHALLENGED}: Unable to extract challenge data;.*",
        challenged,
    ), challenged
    assert re.fullmatch(
        rf"FAIL  canary {re.escape(post_url(PRIVATE))}: PRIVATE after \d+\.\d s: "
        rf"ERROR: \[TikTok\] {PRIVATE}: You do not have permission to view this post\..*",
        private,
    ), private


async def test_a_cookies_file_others_can_read_fails(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi
) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n.tiktok.com\tTRUE\t/\tTRUE\t2000000000\tsid\tsecret-sid\n"
    )
    cookies.chmod(0o644)
    env = base_env(tmp_path, index, api, DOWNLOAD_COOKIES_FILE=str(cookies))
    code, lines, stderr = await doctor(tmp_path, env)
    assert code == 1
    assert failed(lines) == [f"FAIL  cookies {cookies} is readable by other users: chmod 600 it"]
    assert "secret-sid" not in "\n".join(lines) + stderr


async def test_without_any_platform_it_fails_and_says_which_settings(
    tmp_path: Path, index: FakePyPI
) -> None:
    env = bot_env(tmp_path, PACKAGE_INDEX_URL=index.url, CANARY_URLS=",")
    code, lines, _ = await doctor(tmp_path, env)
    assert code == 1
    assert failed(lines) == [
        "FAIL  platforms none configured: set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN "
        "(the bot does not start without one)"
    ]


async def test_an_invalid_setting_exits_2_like_the_bot(tmp_path: Path) -> None:
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, DOWNLOAD_TIMEOUT_S="soon")
    process = await run_bot(tmp_path, env, "doctor")
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stderr.decode().startswith("Setting DOWNLOAD_TIMEOUT_S:")
    assert stdout == b""
    assert TOKEN not in stderr.decode()


async def test_an_unreachable_bot_api_fails_in_one_line_without_the_token(
    tmp_path: Path, index: FakePyPI, api: FakeBotApi, closed_port: int
) -> None:
    root = f"http://127.0.0.1:{closed_port}"
    env = base_env(tmp_path, index, api, TELEGRAM_API_URL=root)
    code, lines, stderr = await doctor(tmp_path, env)
    assert code == 1
    [line] = failed(lines)
    assert line.startswith(f"FAIL  telegram {root} not reachable: NetworkError: "), line
    assert "Cannot connect" in line, line
    assert api.token not in "\n".join(lines) + stderr
