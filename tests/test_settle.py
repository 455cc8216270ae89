"""Once warm, the bot takes its start-up objects out of the garbage collector's sight."""

from __future__ import annotations

import subprocess
import sys

import pytest

# In a process of its own: freezing the test process would keep every test's garbage.
SETTLE = """
import asyncio, gc, sys
from bot.app import settle

class Engine:
    def __init__(self, fails):
        self.fails, self.waited = fails, False

    async def warmed_up(self):
        await asyncio.sleep(0.01)
        self.waited = True
        if self.fails:
            raise RuntimeError("warm-up failed")

engine = Engine(sys.argv[1] == "fails")
assert gc.get_freeze_count() == 0
asyncio.run(settle(engine))
print(engine.waited, gc.get_freeze_count())
"""


@pytest.mark.parametrize("warm_up", ["works", "fails"])
def test_settle_freezes_what_start_up_made_once_the_downloads_are_warm(warm_up: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SETTLE, warm_up],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    waited, frozen = done.stdout.split()
    assert waited == "True"
    # Every module of the bot and its libraries: tens of thousands of objects.
    assert int(frozen) > 10_000
