"""The fault run: 200 requests through the real bot while the TikTok and Bot API stand-ins
misbehave at random (seeded, so a failure replays). Every request is answered exactly once,
with its video or one clear reason; nothing crashes; no temporary file is left.

Run `pytest tests/test_fault_run.py -s` to see the counts it prints.
"""

from __future__ import annotations

import gc
import logging
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.model import Reason
from tests.harness import replies_to, running_bot, until
from tests.standins.clips import Clip
from tests.standins.telegram_api import TRANSIENT_FAULTS as API_FAULTS
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import PERMANENT_FAULTS, TRANSIENT_FAULTS, TikTokStandIn

# yt-dlp drops the connection of a failed or stopped media request without closing it.
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

SEED = 20261125
REQUESTS = 200
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


async def test_two_hundred_requests_under_random_faults_are_each_answered_once(
    h264_clip: Clip, tmp_path: Path, errors: _Records
) -> None:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    async with TikTokStandIn() as tiktok, FakeBotApi() as api:
        for post in VIDEOS:
            tiktok.add_video(post, h264_clip, author="dancer")
        tiktok.add_status(PRIVATE, 10216)
        tiktok.add_status(REMOVED, 10204)
        tiktok.fail_randomly(
            random.Random(rng.random()), FAULT_RATE, TRANSIENT_FAULTS | PERMANENT_FAULTS
        )
        api.fail_randomly(random.Random(rng.random()), FAULT_RATE, API_FAULTS, delay_s=0.5)
        async with running_bot(
            tiktok,
            data_dir,
            telegram=api,
            download_timeout_s=8,
            download_retry_delay_s=0.2,
            rate_limit_user_per_min=1000,
            rate_limit_chat_per_min=1000,
        ) as bot:
            posts = [rng.choice([*VIDEOS, PRIVATE, REMOVED]) for _ in range(REQUESTS)]
            asked = [
                api.inject_message(
                    f"https://www.tiktok.com/@dancer/video/{post}",
                    chat_id=30_000 + n,
                    user_id=40_000 + n,
                )
                for n, post in enumerate(posts)
            ]
            await until(lambda: all(replies_to(api, message) for message in asked), 300)
            await bot.engine.queue.join()
            # Faults off: the bot still answers once the storm is over.
            tiktok.clear_faults()
            api.fail_randomly(rng, 0)
            after = api.inject_message(f"https://www.tiktok.com/@dancer/video/{VIDEOS[0]}")
            await until(lambda: bool(replies_to(api, after)))
            await bot.engine.queue.join()
        replies = [replies_to(api, message) for message in asked]
    left = sorted(str(path) for path in (data_dir / "jobs").rglob("*"))
    crashes = [
        record
        for record in errors.records
        if any(marker in record.getMessage().lower() for marker in CRASH_MARKERS)
    ]
    kinds = Counter(
        "video" if "video" in each[0] else each[0].get("text") for each in replies if each
    )
    answered = sum(1 for each in replies if each)
    duplicates = sum(len(each) - 1 for each in replies if len(each) > 1)
    print(
        f"\nfault run (seed {SEED}): requests {REQUESTS}, answered {answered}, "
        f"duplicates {duplicates}, crashes {len(crashes)}, temp files left {len(left)}; "
        f"TikTok faults served {len(tiktok.served_faults)}, Bot API faults {len(api.faults)}"
    )
    for kind, count in kinds.most_common():
        print(f"  {count:4d}  {kind}")
    assert tiktok.served_faults, "the seeded run injected no TikTok faults"
    assert api.faults, "the seeded run injected no Bot API faults"
    assert answered == REQUESTS
    assert duplicates == 0
    assert crashes == []
    assert left == []
    reasons = {reason.message for reason in Reason}
    for message, each in zip(asked, replies, strict=True):
        [reply] = each
        assert "video" in reply or reply.get("text") in reasons, (message["text"], reply)
    assert kinds["video"] > REQUESTS // 2
