"""TikTok misbehaving, end to end: the real bot, real yt-dlp, the stand-in injecting faults.

Every request is answered exactly once (the video, or the reason), and no job files are left
(``running_bot`` checks the jobs directory once the bot has stopped).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.runtime import Reshare
from bot.model import Reason
from tests.harness import (
    answers,
    assert_plays,
    is_status,
    jobs_done,
    link,
    running_bot,
    tiktok_serving,
    uploaded_video,
)
from tests.standins.clips import Clip, make_clip
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import PERMANENT_FAULTS, TRANSIENT_FAULTS, Fault, TikTokStandIn

# yt-dlp 2026.10.26 drops the HTTPError of a failed media request without closing its response
# (downloader/http.py, establish_connection; YoutubeDL.process_info for a 403), so its blocking
# ssl.SSLSocket is collected unclosed. Only yt-dlp's requests/urllib clients make such sockets
# here; the collection is forced at the end of each test, so no warning reaches another test.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
    pytest.mark.usefixtures("collect_leaked_sockets"),
]


POST = "7301234567890123456"
LINK = f"https://www.tiktok.com/@dancer/video/{POST}"
# A read may stay silent for a quarter of the deadline (3.75 s here) before it is retried; the
# deadline leaves room for that and a second attempt on a loaded machine.
FAST: dict[str, Any] = {"download_timeout_s": 15, "download_retry_delay_s": 0.01}
# Media served whole would be this large: far more than sockets and the proxy buffer on the way.
WHOLE_FILE = 200_000_000


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with tiktok_serving(h264_clip, POST) as tt:
        yield tt


def replies(api: FakeBotApi) -> list[ApiCall]:
    """What the requester got: videos and messages, not the "sending video…" indicator."""
    return [
        call
        for call in answers(api)
        if call.method not in ("sendChatAction", "editMessageText", "deleteMessage")
        and not is_status(call.params.get("text"))
    ]


async def answer_of(bot: Reshare, api: FakeBotApi, method: str) -> ApiCall:
    """The one answer to the one request (a call of `method`), once every job has ended."""
    await api.wait_for_call(method)
    await jobs_done(bot)
    [reply] = replies(api)
    assert reply.method == method
    return reply


async def answer_to(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path, text: str, method: str, **core: Any
) -> ApiCall:
    """Start the bot with `core` settings, send `text` from a private chat, and return the one
    answer to it (a call of `method`); the bot has stopped by then."""
    async with running_bot(tiktok, tmp_path / "data", telegram=api, **core) as bot:
        api.inject_message(text)
        return await answer_of(bot, api, method)


async def wait_for_replies(api: FakeBotApi, count: int, within_s: float = 60.0) -> None:
    """Until `count` videos and messages together have been sent."""
    async with asyncio.timeout(within_s):
        while len(replies(api)) < count:
            waits = [
                asyncio.create_task(
                    api.wait_for_call(method, count=len(api.calls_to(method)) + 1, timeout=within_s)
                )
                for method in ("sendVideo", "sendMessage")
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
                await asyncio.wait(waits)


def in_order(faults: frozenset[Fault]) -> list[Fault]:
    """The same order in every worker, as pytest-xdist requires."""
    return sorted(faults, key=lambda fault: fault.value)


def pages(tt: TikTokStandIn) -> int:
    return tt.count(host=TikTokStandIn.WEB_HOST, path_prefix="/@")


@pytest.mark.parametrize("fault", in_order(TRANSIENT_FAULTS))
async def test_a_fault_that_strikes_once_is_retried_and_the_video_sent(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    h264_clip: Clip,
    tmp_path: Path,
    fault: Fault,
) -> None:
    tiktok.inject(fault, times=1)
    reply = await answer_to(tiktok, api, tmp_path, LINK, "sendVideo", **FAST)
    assert [served.fault for served in tiktok.served_faults] == [fault]
    assert reply.method == "sendVideo"
    assert_plays(uploaded_video(api, reply, tmp_path), h264_clip)


async def test_a_reset_mid_media_resumes_where_the_bytes_stopped(
    tiktok: TikTokStandIn, api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    tiktok.inject(Fault.MEDIA_RESET, times=1)
    reply = await answer_to(tiktok, api, tmp_path, LINK, "sendVideo", **FAST)
    first, second = [r for r in tiktok.requests if r.host == TikTokStandIn.CDN_HOST]
    assert "Range" not in first.headers
    assert second.headers["Range"].startswith("bytes=")
    resumed_at = int(second.headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at < h264_clip.size
    # One page, and the media once in all: the resumed request fetched only the rest.
    assert pages(tiktok) == 1
    assert tiktok.media_bytes_sent < h264_clip.size * 1.2
    assert api.video_bytes(reply) == h264_clip.path.read_bytes()


@pytest.mark.parametrize("fault", in_order(PERMANENT_FAULTS))
async def test_a_refusal_is_not_retried_and_gets_the_blocked_reason(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path, fault: Fault
) -> None:
    tiktok.inject(fault, times=None)
    reply = await answer_to(tiktok, api, tmp_path, LINK, "sendMessage", **FAST)
    # TikTok gives a removed post and a blocked address the same status (10204): through one
    # proxy, alone, it is believed (tests/test_breakage_e2e.py shows when it is not).
    said = Reason.REMOVED if fault is Fault.BLOCKED_IP else Reason.BLOCKED
    assert (reply.method, reply.params["text"]) == ("sendMessage", said.message)
    assert len(tiktok.served_faults) == 1
    assert pages(tiktok) == 1


@pytest.mark.parametrize(
    ("fault", "requests_per_attempt"),
    [
        # yt-dlp never retries the page; the bot makes three attempts.
        pytest.param(Fault.PAGE_ERROR, 1, id="page_error"),
        # Each attempt: one page, then the media four times (yt-dlp's own three retries).
        pytest.param(Fault.MEDIA_ERROR, 5, id="media_error"),
    ],
)
async def test_a_server_error_that_persists_ends_in_a_reason_after_bounded_retries(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    tmp_path: Path,
    fault: Fault,
    requests_per_attempt: int,
) -> None:
    tiktok.inject(fault, times=None)
    reply = await answer_to(tiktok, api, tmp_path, LINK, "sendMessage", **FAST)
    assert (reply.method, reply.params["text"]) == ("sendMessage", Reason.FAILED.message)
    assert pages(tiktok) == 3
    assert len(tiktok.requests) == 3 * requests_per_attempt


@pytest.mark.parametrize("fault", [Fault.PAGE_SILENT, Fault.MEDIA_SILENT, Fault.MEDIA_STALL])
async def test_a_server_that_stops_sending_ends_in_the_timeout_reason_by_the_deadline(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path, fault: Fault
) -> None:
    deadline_s = 3.0
    tiktok.inject(fault, times=None)
    async with running_bot(
        tiktok,
        tmp_path / "data",
        telegram=api,
        download_timeout_s=deadline_s,
        download_retry_delay_s=0.01,
    ) as bot:
        api.inject_message(LINK)
        asked = time.monotonic()
        [reply] = await api.wait_for_call("sendMessage", timeout=20)
        answered_after = time.monotonic() - asked
        await answer_of(bot, api, "sendMessage")
    assert reply.params["text"] == Reason.TIMED_OUT.message
    assert api.calls_to("sendVideo") == []
    # Not a speed figure: a stall must not hold the answer past the deadline (plus the time
    # the request takes to reach the bot and the answer to come back, on a loaded machine).
    assert answered_after < deadline_s + 2.0


@pytest.mark.parametrize(
    "link",
    [
        "https://www.tiktok.com/@dancer",
        "https://www.tiktok.com/@dancer?lang=en",
        "https://www.tiktok.com/tag/funny",
        f"https://www.tiktok.com/music/Original-Sound-{POST}",
        "https://www.tiktok.com/@dancer/live",
        "https://www.tiktok.com/live",
    ],
)
async def test_profile_tag_music_and_live_links_start_no_download(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path, link: str
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        # In a group: silence, as for any message the bot cannot serve.
        api.inject_message(f"look {link}", chat_id=-1001, chat_type="group")
        # In a private chat: why not.
        api.inject_message(link, chat_id=1001)
        reply = await answer_of(bot, api, "sendMessage")
    assert reply.params["chat_id"] == 1001
    assert (reply.method, reply.params["text"]) == ("sendMessage", Reason.NOT_A_VIDEO.message)
    assert tiktok.requests == []
    assert api.calls_to("sendChatAction") == [], "no 'sending video…' for a link without one"


async def test_a_profile_link_beside_a_video_link_gets_only_the_video(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        api.inject_message(f"https://www.tiktok.com/@dancer and {LINK}", chat_type="group")
        reply = await answer_of(bot, api, "sendVideo")
    assert reply.method == "sendVideo"
    assert {r.path for r in tiktok.requests if r.host == TikTokStandIn.WEB_HOST} == {
        f"/@_/video/{POST}"
    }


@pytest.mark.parametrize("content_length", [True, False], ids=["content_length", "chunked"])
async def test_media_larger_than_the_page_says_is_stopped_while_it_arrives(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    h264_clip: Clip,
    tmp_path: Path,
    content_length: bool,
) -> None:
    big = "7301234567890123999"
    # The page claims 1 MB; the CDN would send 200 MB.
    tiktok.add_video(
        big,
        h264_clip,
        listed_size=1_000_000,
        content_length=content_length,
        trailing_bytes=WHOLE_FILE - h264_clip.size,
    )
    reply = await answer_to(
        tiktok, api, tmp_path, link(big, "dancer"), "sendMessage", max_download_mb=2
    )
    assert (reply.method, reply.params["text"]) == ("sendMessage", Reason.TOO_LARGE.message)
    assert tiktok.media_requests == 1
    # What the sockets and the proxy buffered on the way counts as sent, too.
    assert tiktok.media_bytes_sent < WHOLE_FILE / 4


async def test_media_the_page_lists_as_too_large_is_not_requested(
    tiktok: TikTokStandIn, api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    big = "7301234567890123997"
    tiktok.add_video(big, h264_clip, listed_size=3_000_000)
    reply = await answer_to(
        tiktok, api, tmp_path, link(big, "dancer"), "sendMessage", max_download_mb=2
    )
    assert reply.params["text"] == Reason.TOO_LARGE.message
    assert tiktok.media_requests == 0


@pytest.mark.parametrize(
    "listed",
    [pytest.param({"listed_duration": 0}, id="no_duration"), pytest.param({"listed_duration": 5})],
)
async def test_media_longer_than_the_page_says_is_stopped_by_its_header(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    large_clip: Clip,
    tmp_path: Path,
    listed: dict[str, Any],
) -> None:
    long = "7301234567890123998"
    # 30 s of faststart mp4: the header at its start says so.
    tiktok.add_video(
        long,
        large_clip,
        content_length=False,
        trailing_bytes=WHOLE_FILE - large_clip.size,
        **listed,
    )
    reply = await answer_to(
        tiktok, api, tmp_path, link(long, "dancer"), "sendMessage", max_duration_s=10
    )
    assert (reply.method, reply.params["text"]) == ("sendMessage", Reason.TOO_LONG.message)
    assert tiktok.media_requests == 1
    assert tiktok.media_bytes_sent < WHOLE_FILE / 4


async def test_a_small_file_longer_than_the_page_says_is_refused_once_it_arrived(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    # Too small to be probed on the way (under 256 KiB): the finished file's header decides.
    clip = make_clip(tmp_path / "long.mp4", duration=20, width=64, height=64, audio=False, fps=5)
    assert clip.size < 256 * 1024
    long = "7301234567890123996"
    tiktok.add_video(long, clip, listed_duration=2)
    reply = await answer_to(
        tiktok, api, tmp_path, link(long, "dancer"), "sendMessage", max_duration_s=10
    )
    assert reply.params["text"] == Reason.TOO_LONG.message
    assert tiktok.media_requests == 1


async def test_random_transient_faults_still_get_every_request_answered_once(
    api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    posts = [f"73012345678900{n:05d}" for n in range(24)]
    async with TikTokStandIn() as tt:
        for post in posts:
            tt.add_video(post, h264_clip)
        tt.fail_randomly(random.Random(6), rate=0.25)
        async with running_bot(
            tt,
            tmp_path / "data",
            telegram=api,
            download_timeout_s=6,
            download_retry_delay_s=0.01,
            rate_limit_user_per_min=1000,
            rate_limit_chat_per_min=1000,
        ) as bot:
            for n, post in enumerate(posts):
                api.inject_message(f"https://www.tiktok.com/@_/video/{post}", chat_id=9000 + n)
            await wait_for_replies(api, len(posts))
            await jobs_done(bot)
    answered = sorted(call.params["chat_id"] for call in replies(api))
    assert answered == [9000 + n for n in range(len(posts))]
    assert tt.served_faults
    videos = api.calls_to("sendVideo")
    # Retries get past most faults; the rest (three page faults in a row, stalls past the
    # deadline) end in a reason, never in silence or twice. Which requests draw the seeded
    # faults depends on the order they arrive in: a run sends 18 of the 24 videos, with threads
    # or the download process alike, so 3/4 was a bound one more unlucky clip would break.
    assert len(videos) > len(posts) // 2
    assert all(api.video_bytes(v) == h264_clip.path.read_bytes() for v in videos)
