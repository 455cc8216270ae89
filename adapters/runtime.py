"""Runs the core with every adapter whose token is set, in one process."""

from __future__ import annotations

from adapters.telegram import TelegramAdapter, TelegramSettings
from bot.engine import Engine
from bot.settings import CoreSettings


class Reshare:
    """The whole bot: one engine, the configured platforms around it."""

    def __init__(self, core: CoreSettings, telegram: TelegramSettings) -> None:
        self.engine = Engine(core)
        self.telegram = (
            TelegramAdapter(telegram, self.engine.intake) if telegram.telegram_bot_token else None
        )

    @staticmethod
    def secrets(telegram: TelegramSettings) -> list[str]:
        token = telegram.telegram_bot_token
        return [token.get_secret_value()] if token else []

    async def start(self) -> None:
        repliers = {"telegram": self.telegram.replier} if self.telegram else {}
        self.engine.start(repliers)
        if self.telegram:
            await self.telegram.start()

    async def stop(self) -> None:
        if self.telegram:
            await self.telegram.stop()
        await self.engine.stop()
