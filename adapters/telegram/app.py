"""The python-telegram-bot Application: long polling or a webhook, handlers, start and stop.

We poll with our own getUpdates loop instead of PTB's Updater: the Updater confirms an update
(asks for the next offset) as soon as it has it, before any handler ran, so a crash in between
loses it. Here an update is confirmed only after its handler has written the request down in
the journal (DESIGN.md section 11).

For the same reason the webhook is our own aiohttp route, not PTB's `run_webhook` (which answers
200 before any handler ran): a POST is answered 200 only once its request is durably queued, and
5xx when the queue cannot be reached, so Telegram delivers the update again (DESIGN.md 13).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import urllib.parse
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from telegram import Message, Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram.inbound import is_private, origin_of, person_message, texts_of
from adapters.telegram.limiter import SharedRateLimiter
from adapters.telegram.outbound import TelegramOperatorChannel, TelegramReplier, retry_after_s
from adapters.telegram.settings import TelegramSettings
from bot.intake import HELP_TEXT, Answer, Intake
from bot.ports import SendLimits
from bot.retry import Retrying

log = logging.getLogger(__name__)

# Seconds to open a connection and to wait for a free one of PTB's pool.
CONNECT_TIMEOUT_S = 10.0
POOL_TIMEOUT_S = 30.0

# Seconds one getUpdates call waits for updates (long polling).
POLL_TIMEOUT_S = 10
# Backoff between failed getUpdates calls: doubling from the first to the last.
POLL_RETRY_FIRST_S = 0.5
POLL_RETRY_MAX_S = 30.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
SET_WEBHOOK_ATTEMPTS = 5
# By webhook these are a 503, not a message: Telegram delivers the update again, to this
# receiver once it is back or to another one.
_COME_BACK = frozenset({Answer.UNAVAILABLE, Answer.RESTARTING})
# Shutdown does not wait longer than this to confirm the updates handled last.
CONFIRM_TIMEOUT_S = 2.0


class TelegramAdapter:
    """Translates updates into core requests; the core answers through `replier`."""

    def __init__(
        self,
        settings: TelegramSettings,
        intake: Intake,
        retry: Retrying,
        send_limits: SendLimits,
    ) -> None:
        """`send_limits` counts Telegram's flood limits for the whole bot (every worker)."""
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        # PTB 22 warns on every RetryAfter unless opted in to its timedelta durations.
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        root = settings.telegram_api_url.rstrip("/")
        self._intake = intake
        self._budget_bytes = settings.upload_limit_bytes
        self.application = (
            Application.builder()
            .token(settings.telegram_bot_token.get_secret_value())
            .base_url(f"{root}/bot")
            .base_file_url(f"{root}/file/bot")
            # A slow answer is waited for: a call that timed out may have been carried out and
            # is never sent again (bot.retry), so the timeouts are long.
            .connect_timeout(CONNECT_TIMEOUT_S)
            .read_timeout(settings.telegram_timeout_s)
            .write_timeout(settings.telegram_timeout_s)
            .pool_timeout(POOL_TIMEOUT_S)
            # It keeps to Telegram's flood limits; retrying a 429 is the core's (bot.retry),
            # under one deadline with the other retries.
            .rate_limiter(SharedRateLimiter(send_limits))
            .updater(None)
            .build()
        )
        self.replier = TelegramReplier(self.application.bot, retry)
        self.operator_channel = (
            TelegramOperatorChannel(self.application.bot, settings.operator_chat_id, retry)
            if settings.operator_chat_id is not None
            else None
        )
        self._polling: asyncio.Task[None] | None = None
        self._stop_polling = asyncio.Event()
        self._webhook_url = settings.telegram_webhook_url
        self._webhook_secret = (
            settings.telegram_webhook_secret.get_secret_value()
            if settings.telegram_webhook_secret
            else ""
        )
        self._help = CommandHandler(
            ["start", "help"], self._on_help, filters=filters.UpdateType.MESSAGE
        )
        self._messages = MessageHandler(
            filters.UpdateType.MESSAGE & (filters.TEXT | filters.CAPTION), self._on_message
        )
        self.application.add_handler(self._help)
        self.application.add_handler(self._messages)

    @property
    def webhook_path(self) -> str | None:
        """The path Telegram POSTs updates to, when updates come by webhook."""
        if not self._webhook_url:
            return None
        return urllib.parse.urlsplit(self._webhook_url).path or "/"

    async def start(self, *, receive: bool = True) -> None:
        """Connect; with `receive`, take updates (by webhook when its URL is set, else by
        polling). A worker only sends, and takes no updates."""
        await self.application.initialize()
        await self.application.start()
        if not receive:
            return
        bot = self.application.bot
        if self._webhook_url:
            await self._set_webhook()
            log.info("Telegram: updates come by webhook")
            return
        # Polling and a webhook exclude each other; updates waiting for us are kept.
        await bot.delete_webhook()
        self._polling = asyncio.create_task(self._poll(), name="telegram-polling")

    async def _set_webhook(self) -> None:
        """Telegram takes one setWebhook a second per bot: receivers starting together, or one
        restarted at once, wait their turn."""
        for attempt in range(1, SET_WEBHOOK_ATTEMPTS + 1):
            try:
                await self.application.bot.set_webhook(
                    self._webhook_url or "",
                    secret_token=self._webhook_secret,
                    allowed_updates=[Update.MESSAGE],
                )
                return
            except RetryAfter as err:
                if attempt == SET_WEBHOOK_ATTEMPTS:
                    raise
                await asyncio.sleep(retry_after_s(err))

    def connected(self) -> bool:
        """For /healthz: the client is up and, when polling, the polling goes on."""
        polling_ended = self._polling is not None and self._polling.done()
        return self.application.running and not polling_ended

    async def on_webhook(self, request: web.Request) -> web.Response:
        """One update from Telegram: 200 once handled (its request durably queued), 401/403 for
        a missing or wrong secret, 503 when the queue cannot be reached (Telegram retries)."""
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return web.Response(status=401, text="secret token missing")
        if not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            return web.Response(status=403, text="wrong secret token")
        try:
            update = Update.de_json(await request.json(), self.application.bot)
        except ValueError:
            return web.Response(status=400, text="not an update")
        if self._help.check_update(update):
            self._help_reply(update)
        elif self._messages.check_update(update):
            answer = await self._take(update)
            if answer in _COME_BACK:
                return web.Response(status=503, text="try again")
        return web.Response(text="ok")

    async def stop_polling(self) -> None:
        """Take no more updates; those already taken are handled and confirmed."""
        self._stop_polling.set()
        if self._polling is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._polling
            self._polling = None

    async def stop(self) -> None:
        await self.stop_polling()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def _poll(self) -> None:
        """Get updates, hand each to the handlers, and only then confirm it (the next offset)."""
        bot = self.application.bot
        offset: int | None = None
        failures = 0
        stopping = asyncio.create_task(self._stop_polling.wait())
        try:
            while not stopping.done():
                fetch = asyncio.create_task(
                    bot.get_updates(
                        offset=offset, timeout=POLL_TIMEOUT_S, allowed_updates=[Update.MESSAGE]
                    )
                )
                await asyncio.wait([fetch, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    # Updates it may bring are not confirmed: the next start gets them.
                    fetch.cancel()
                    with contextlib.suppress(BaseException):
                        await fetch
                    break
                try:
                    updates = fetch.result()
                except Exception as err:
                    # Polling must outlive any failure: an error here would end it silently.
                    failures += 1
                    delay = _retry_delay(err, failures)
                    log.warning("getUpdates failed (%r): again in %.1f s", err, delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopping), delay)
                    continue
                failures = 0
                for update in updates:
                    await self.application.process_update(update)
                    offset = update.update_id + 1
                    # Let idle workers take the request before the next one meets a full queue.
                    await asyncio.sleep(0)
            if offset is not None:
                await self._confirm(offset)
        finally:
            stopping.cancel()

    async def _confirm(self, offset: int) -> None:
        """Tell Telegram the updates before `offset` are handled, so a restart does not get
        them again (their short replies, which the journal does not keep, would be repeated)."""
        confirming = self.application.bot.get_updates(
            offset=offset, timeout=0, limit=1, allowed_updates=[Update.MESSAGE]
        )
        try:
            await asyncio.wait_for(confirming, CONFIRM_TIMEOUT_S)
        except (TelegramError, TimeoutError) as err:
            # The journal knows them: a second delivery is recognised and not answered again.
            log.info("could not confirm the last updates (%r)", err)

    def _reply_soon(self, reply: Coroutine[Any, Any, Message], update: Update) -> None:
        """Send a short reply without holding up polling (a slow API must not stall it)."""
        self.application.create_task(reply, update=update)

    async def _on_help(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        self._help_reply(update)

    def _help_reply(self, update: Update) -> None:
        taken = person_message(update)
        if taken is None:
            return
        message, _ = taken
        self._reply_soon(message.reply_text(HELP_TEXT, do_quote=False), update)

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._take(update)

    async def _take(self, update: Update) -> Answer | None:
        """Queue the message's links and say at once what there is to say; by webhook, a
        queue out of reach is said with a 503 instead, and Telegram sends the update again."""
        taken = person_message(update)
        if taken is None:
            return None
        message, sender = taken
        answer = await self._intake.take(
            texts_of(message),
            origin_of(message),
            self._budget_bytes,
            private=is_private(message),
            sender=sender,
        )
        text = self._intake.say(answer)
        if answer in _COME_BACK and self._webhook_url:
            return answer
        if text is not None:
            self._reply_soon(message.reply_text(text, do_quote=not is_private(message)), update)
        return answer


def _retry_delay(err: Exception, failures: int) -> float:
    """Telegram's own wait after a 429, else a doubling backoff."""
    if isinstance(err, RetryAfter):
        return retry_after_s(err)
    return min(POLL_RETRY_MAX_S, POLL_RETRY_FIRST_S * 2.0 ** (failures - 1))
