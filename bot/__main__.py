"""`python -m bot`: with DOWNLOAD_PROCESS=true the download process (bot.download_process) is
started first, so that it imports yt-dlp while this process imports the bot (bot.app, ~0.9 s):
the first request then finds it ready instead of waiting ~0.3 s for it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.download_process import EarlyChild

# Commands that run jobs in this process (`receive` only queues them; `doctor` starts its own).
_JOB_COMMANDS = (None, "work", "fetch")


def early_child(argv: Sequence[str]) -> EarlyChild | None:
    """A download process started now, when this command will want one."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command not in _JOB_COMMANDS or any(arg in ("-h", "--help") for arg in argv):
        return None
    from pydantic import ValidationError

    from bot.download_process import EarlyChild
    from bot.settings import CoreSettings

    try:
        wanted = CoreSettings().download_process
    except ValidationError:
        return None  # bot.app says what is wrong
    return EarlyChild() if wanted else None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    early = early_child(args)
    try:
        from bot.app import main as run

        return run(args, early)
    finally:
        if early is not None:
            early.close()


if __name__ == "__main__":
    raise SystemExit(main())
