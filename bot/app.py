"""Composition root of `python -m bot` (bot.__main__): runs the bot (`receive` and `work` run one
side of the distributed mode), `fetch URL` fetches one clip, `doctor` checks the deployment.

The one module of `bot` that reaches the adapters (and so telegram), and only to run them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from adapters.discord import DEFAULT_UPLOAD_BYTES as DISCORD_UPLOAD_BYTES
from adapters.discord import DiscordSettings, discord_checks
from adapters.runtime import Reshare, Role
from adapters.telegram import TelegramSettings, telegram_checks
from bot.cli import FileReplier, ShellOrigin
from bot.doctor import NETWORK_TIMEOUT_S, Check, Redactor, fail, run_checks
from bot.download_process import EarlyChild
from bot.engine import Engine
from bot.logs import configure_logging
from bot.model import Reason, VideoRequest
from bot.settings import CoreSettings

log = logging.getLogger("bot")

USAGE = """`python -m bot` runs the bot (`receive` and `work` run one side of the distributed
mode), `python -m bot fetch URL` fetches one clip, `python -m bot doctor` checks the deployment."""

MISSING_SETTINGS_TEXT = (
    "No platform is configured: set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN in the\n"
    "environment or in a .env file (copy .env.example to .env and fill it in; every setting\n"
    "is explained there)."
)
NO_REDIS_TEXT = (
    "`python -m bot {role}` is one side of the distributed mode: set REDIS_URL (e.g.\n"
    "redis://127.0.0.1:6379/0). Without it, run `python -m bot`, which does everything."
)
SHELL_BUDGET_BYTES = 2_000_000_000
# glibc's mallopt parameter (malloc.h) and the value the bot sets unless the environment does.
_M_ARENA_MAX = -8
MALLOC_ARENA_MAX = 1


async def fetch(
    settings: CoreSettings, url: str, output: Path | None, early: EarlyChild | None = None
) -> int:
    try:
        engine = Engine(settings, early=early)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    links = engine.sites.find(url)
    if not links:
        print(engine.intake.no_link_text, file=sys.stderr)
        await engine.stop()
        return 1
    replier = FileReplier(output)
    try:
        request = VideoRequest((links[0],), ShellOrigin(), SHELL_BUDGET_BYTES)
        # The system's temporary directory: a bot may be running on DATA_DIR's job directories.
        await engine.service({"shell": replier}, work_root=None).process(request)
    finally:
        await engine.stop()
    if replier.saved is None:
        print((replier.reason or Reason.FAILED).message, file=sys.stderr)
        return 1
    print(replier.saved)
    return 0


async def doctor(core: CoreSettings, telegram: TelegramSettings, discord: DiscordSettings) -> int:
    """One line per check; 0 when none failed, 1 otherwise."""
    redact = Redactor([*Reshare.secrets(telegram, discord), *core.secrets()])
    budgets = []
    if telegram.telegram_bot_token:
        budgets.append(telegram.upload_limit_bytes)
    if discord.discord_bot_token:
        budgets.append(DISCORD_UPLOAD_BYTES)
    platforms = {
        "telegram": telegram_checks(telegram, NETWORK_TIMEOUT_S),
        "discord": discord_checks(discord, NETWORK_TIMEOUT_S),
    }

    def show(check: Check) -> None:
        print(redact(check.line()), flush=True)

    if not budgets:
        for coroutine in platforms.values():
            coroutine.close()
        platforms = {"platforms": _no_platform()}
    checks = await run_checks(
        core,
        budget_bytes=min(budgets, default=DISCORD_UPLOAD_BYTES),
        platforms=platforms,
        on_check=show,
    )
    code = 1 if any(check.failed for check in checks) else 0
    current = asyncio.current_task()
    if any(task is not current and not task.done() for task in asyncio.all_tasks()):
        # A check that ran out of time is stuck (a download thread in a socket read): its
        # line is printed, so nothing is lost by not waiting for it.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


async def _no_platform() -> list[Check]:
    return [
        fail(
            "platforms",
            "none configured: set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN (the bot does "
            "not start without one)",
        )
    ]


async def serve(
    core: CoreSettings,
    telegram: TelegramSettings,
    discord: DiscordSettings,
    role: Role = Role.ALL,
    early: EarlyChild | None = None,
) -> int:
    stop = asyncio.Event()
    bot: Reshare | None = None

    def on_signal() -> None:
        # The first signal stops with SHUTDOWN_GRACE_S; a second one does not wait for it.
        if stop.is_set() and bot is not None:
            log.info("stopping now")
            bot.hurry()
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        try:
            bot = Reshare(core, telegram, discord, role=role, early=early)
            await bot.start()
        except Exception as err:
            # Through the log, which redacts tokens (some libraries put them in the message).
            log.error("could not start: %s", err)
            return 1
        log.info("running (%s); stop with Ctrl-C or SIGTERM", _describe(role, core))
        settling = asyncio.create_task(settle(bot.engine))
        await stop.wait()
        settling.cancel()
        log.info("stopping")
    finally:
        if bot is not None:
            await bot.stop()
    return 0


async def settle(engine: Engine) -> None:
    """Once the download threads are warm, take every object made so far out of the garbage
    collector's sight (gc.freeze): the modules, the YoutubeDL instances and the stores live as
    long as the process, and each full collection walked them all, up to 66 ms on the event
    loop at a time (bench.boundary's cache hits and bursts)."""
    with contextlib.suppress(Exception):
        await engine.warmed_up()
    gc.freeze()


def tune_malloc() -> None:
    """One malloc arena, set before any thread starts.

    glibc gives each thread that allocates an arena of its own (up to 8 per core): the yt-dlp
    threads and asyncio's to_thread workers each kept one, ~25 MiB of a burst's peak RSS
    (bench.boundary part 3) for no measurable speed; one arena instead of two saved ~6 MiB
    more, again with no change the bench could tell. MALLOC_ARENA_MAX in the environment wins;
    without glibc (musl, macOS) nothing is done. (A fixed MALLOC_MMAP_THRESHOLD_ saved ~5 MiB
    more but slowed the burst of 20 by ~20%: not set.)
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt does nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(_M_ARENA_MAX, MALLOC_ARENA_MAX)


def main(argv: Sequence[str] | None = None, early: EarlyChild | None = None) -> int:
    """`python -m bot`; `early` is a download process bot.__main__ started before the imports."""
    tune_malloc()
    parser = argparse.ArgumentParser(prog="python -m bot", description=USAGE)
    commands = parser.add_subparsers(dest="command")
    fetch_cmd = commands.add_parser("fetch", help="fetch one link to a playable mp4")
    fetch_cmd.add_argument("url")
    fetch_cmd.add_argument("-o", "--output", type=Path, default=None)
    commands.add_parser("receive", help="take platform events and queue jobs (needs REDIS_URL)")
    commands.add_parser("work", help="run queued jobs: download, fit, send (needs REDIS_URL)")
    commands.add_parser(
        "doctor", help="check the deployment: one line per check, exit 0 when all hold"
    )
    args = parser.parse_args(argv)

    try:
        settings = CoreSettings()
        telegram, discord = TelegramSettings(), DiscordSettings()
    except ValidationError as err:
        for problem in err.errors():
            name = ".".join(str(part) for part in problem["loc"]).upper()
            print(f"Setting {name}: {problem['msg']}", file=sys.stderr)
        return 2
    # Tokens, the cobalt key and passwords in URLs (REDIS_URL, DOWNLOAD_PROXY) never show.
    secrets = [*Reshare.secrets(telegram, discord), *settings.secrets()]
    level = settings.log_level
    if args.command in ("fetch", "doctor") and "log_level" not in settings.model_fields_set:
        level = "WARNING"  # a shell user wants the file or one line of reason, not the bot's log
    if args.command == "doctor":
        configure_logging(level, secrets)
        code = asyncio.run(doctor(settings, telegram, discord))
        if _threads_left():
            os._exit(code)  # a download thread stuck past its check's time
        return code
    configure_logging(level, secrets)
    if args.command == "fetch":
        return asyncio.run(fetch(settings, args.url, args.output, early))
    role = Role(args.command) if args.command in ("receive", "work") else Role.ALL
    if role is not Role.ALL and not settings.redis_url:
        print(NO_REDIS_TEXT.format(role=role.value), file=sys.stderr)
        return 2
    if not Reshare.secrets(telegram, discord):
        print(MISSING_SETTINGS_TEXT, file=sys.stderr)
        return 2
    code = asyncio.run(serve(settings, telegram, discord, role, early))
    if _threads_left():
        # A download thread stuck in a network read would hold the exit for its socket
        # timeouts; its files are gone already (Engine.stop), so nothing is lost by not waiting.
        log.warning("exiting without waiting for a blocked download thread")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _describe(role: Role, core: CoreSettings) -> str:
    mode = "distributed, state in Redis" if core.redis_url else "embedded"
    return f"{role.value}, {mode}"


def _threads_left() -> bool:
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())
