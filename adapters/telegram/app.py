"""The python-telegram-bot Application: long polling, handlers, start and stop."""

from __future__ import annotations

import os

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram.inbound import is_private, origin_of, texts_of
from adapters.telegram.outbound import TelegramReplier
from adapters.telegram.settings import TelegramSettings
from bot.intake import BUSY_TEXT, HELP_TEXT, SLOW_DOWN_TEXT, Answer, Intake, Sender
from bot.retry import Retrying

# Seconds to open a connection and to wait for a free one of PTB's pool.
CONNECT_TIMEOUT_S = 10.0
POOL_TIMEOUT_S = 30.0


class TelegramAdapter:
    """Translates updates into core requests; the core answers through `replier`."""

    def __init__(self, settings: TelegramSettings, intake: Intake, retry: Retrying) -> None:
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
            .rate_limiter(AIORateLimiter(max_retries=0))
            .build()
        )
        self.replier = TelegramReplier(self.application.bot, retry)
        self.application.add_handler(
            CommandHandler(["start", "help"], self._on_help, filters=filters.UpdateType.MESSAGE)
        )
        self.application.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE & (filters.TEXT | filters.CAPTION), self._on_message
            )
        )

    async def start(self) -> None:
        await self.application.initialize()
        await self.application.start()
        updater = self.application.updater
        if updater is None:
            raise RuntimeError("the Application was built without an Updater")
        await updater.start_polling(allowed_updates=[Update.MESSAGE], poll_interval=0.0)

    async def stop(self) -> None:
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def _on_help(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        await message.reply_text(HELP_TEXT, do_quote=False)

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        answer = self._intake.take(
            texts_of(message),
            origin_of(message),
            self._budget_bytes,
            private=is_private(message),
            sender=Sender(user=message.from_user.id, chat=message.chat_id),
        )
        text = {
            Answer.NO_LINK: self._intake.no_link_text,
            Answer.BUSY: BUSY_TEXT,
            Answer.SLOW_DOWN: SLOW_DOWN_TEXT,
        }.get(answer)
        if text is not None:
            await message.reply_text(text, do_quote=not is_private(message))
