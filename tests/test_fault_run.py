"""The fault run: 200 requests through the real bot (150 on Telegram, 50 /download commands on
Discord) while the TikTok, Bot API and Discord stand-ins misbehave at random (seeded, so a
failure replays). Every request is answered exactly once, with its video or one clear reason;
nothing crashes; no temporary file is left.

Run `pytest tests/test_fault_run.py -s` to see the counts it prints.
"""

from __future__ import annotations

import gc
import logging
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.outbound import reason_text
from bot.model import Reason
from tests.harness import answers_to, jobs_done, replies_to, running_bot, until
from tests.standins.clips import Clip
from tests.standins.discord_api import TRANSIENT_FAULTS as DISCORD_FAULTS
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import TRANSIENT_FAULTS as API_FAULTS
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import PERMANENT_FAULTS, TRANSIENT_FAULTS, TikTokStandIn

# yt-dlp drops the connection of a failed or stopped media request without closing it.
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

SEED = 20261125
TELEGRAM_REQUESTS = 150
DISCORD_REQUESTS = 50
REQUESTS = TELEGRAM_REQUESTS + DISCORD_REQUESTS
# Most requests are for a clip nobody asked for yet; some share one (single-flight, cache).
VIDEOS = [str(7302000000000000000 + n) for n in range(150)]
PRIVATE = "7302000000000000901"
REMOVED = "7302000000000000902"
FAULT_RATE = 0.15
# What only a crash would log: an exception that escaped a job, a worker or a task.
CRASH_MARKERS = ("request failed", "failed unexpectedly", "exception was never retrieved")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors() -> Iterator[_Records]:
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        gc.collect()


def telegram_kind(reply: dict[str, Any]) -> str:
    return "video" if "video" in reply else str(reply.get("text"))


def discord_kind(reply: dict[str, Any]) -> str:
    if any(a["filename"].endswith(".mp4") for a in reply.get("attachments", [])):
        return "video"
    # An answer in the channel (the interaction's token was gone) names the requester first.
    return re.sub(r"^<@\d+> ", "", str(reply.get("content")))


async def test_two_hundred_requests_under_random_faults_are_each_answered_once(
    h264_clip: Clip, tmp_path: Path, errors: _Records
) -> None:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    async with TikTokStandIn() as tiktok, FakeBotApi() as api, FakeDiscord() as discord_api:
        for post in VIDEOS:
            tiktok.add_video(post, h264_clip, author="dancer")
        tiktok.add_status(PRIVATE, 10216)
        tiktok.add_status(REMOVED, 10204)
        async with running_bot(
            tiktok,
            data_dir,
            telegram=api,
            discord=discord_api,
            download_timeout_s=8,
            download_retry_delay_s=0.2,
            rate_limit_user_per_min=1000,
            rate_limit_chat_per_min=1000,
        ) as bot:
            tiktok.fail_randomly(
                random.Random(rng.random()), FAULT_RATE, TRANSIENT_FAULTS | PERMANENT_FAULTS
            )
            api.fail_randomly(random.Random(rng.random()), FAULT_RATE, API_FAULTS, delay_s=0.5)
            discord_api.fail_randomly(random.Random(rng.random()), FAULT_RATE, DISCORD_FAULTS)
            platforms = ["telegram"] * TELEGRAM_REQUESTS + ["discord"] * DISCORD_REQUESTS
            rng.shuffle(platforms)
            asked: list[tuple[str, dict[str, Any]]] = []
            for n, platform in enumerate(platforms):
                post = rng.choice([*VIDEOS, PRIVATE, REMOVED])
                url = f"https://www.tiktok.com/@dancer/video/{post}"
                if platform == "telegram":
                    message = api.inject_message(url, chat_id=30_000 + n, user_id=40_000 + n)
                else:
                    message = discord_api.inject_slash_command(
                        "download", {"url": url}, user_id=50_000 + n
                    )
                asked.append((platform, message))

            def replies() -> list[list[dict[str, Any]]]:
                return [
                    replies_to(api, message)
                    if platform == "telegram"
                    else answers_to(discord_api, message)
                    for platform, message in asked
                ]

            await until(lambda: all(replies()), 300)
            await jobs_done(bot)
            # Faults off: the bot still answers on both platforms once the storm is over.
            tiktok.clear_faults()
            api.fail_randomly(rng, 0)
            discord_api.fail_randomly(rng, 0)
            after = api.inject_message(f"https://www.tiktok.com/@dancer/video/{VIDEOS[0]}")
            command = discord_api.inject_slash_command("download", {"url": after["text"]})
            await until(
                lambda: bool(replies_to(api, after)) and bool(answers_to(discord_api, command))
            )
            await jobs_done(bot)
            answers = replies()
    left = sorted(str(path) for path in (data_dir / "jobs").rglob("*"))
    crashes = [
        record
        for record in errors.records
        if any(marker in record.getMessage().lower() for marker in CRASH_MARKERS)
    ]
    kinds = Counter(
        (platform, telegram_kind(each[0]) if platform == "telegram" else discord_kind(each[0]))
        for (platform, _), each in zip(asked, answers, strict=True)
        if each
    )
    answered = sum(1 for each in answers if each)
    duplicates = sum(len(each) - 1 for each in answers if len(each) > 1)
    print(
        f"\nfault run (seed {SEED}): requests {REQUESTS}, answered {answered}, "
        f"duplicates {duplicates}, crashes {len(crashes)}, temp files left {len(left)}; "
        f"faults injected: TikTok {len(tiktok.served_faults)}, Bot API {len(api.faults)}, "
        f"Discord {len(discord_api.faults)}"
    )
    for (platform, kind), count in sorted(kinds.items()):
        print(f"  {count:4d}  {platform}: {kind}")
    assert tiktok.served_faults, "the seeded run injected no TikTok faults"
    assert api.faults, "the seeded run injected no Bot API faults"
    assert discord_api.faults, "the seeded run injected no Discord faults"
    assert answered == REQUESTS
    assert duplicates == 0
    assert crashes == []
    assert left == []
    telegram_texts = {"video"} | {reason.message for reason in Reason}
    discord_texts = {"video"} | {reason_text(reason) for reason in Reason}
    assert {kind for platform, kind in kinds if platform == "telegram"} <= telegram_texts
    assert {kind for platform, kind in kinds if platform == "discord"} <= discord_texts
    assert kinds["telegram", "video"] > TELEGRAM_REQUESTS // 2
    assert kinds["discord", "video"] > DISCORD_REQUESTS // 2
