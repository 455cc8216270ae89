"""Runs the core with every adapter whose token is set, in one process: one queue, one cap."""

from __future__ import annotations

import asyncio

from adapters.discord import DiscordAdapter, DiscordSettings
from adapters.discord.inbound import origin_codec as discord_origins
from adapters.telegram import TelegramAdapter, TelegramSettings
from adapters.telegram.inbound import origin_codec as telegram_origins
from bot.engine import Engine
from bot.journal import OriginCodec
from bot.netguard import Resolver
from bot.ports import Replier
from bot.settings import CoreSettings


class Reshare:
    """The whole bot: one engine, the configured platforms around it."""

    def __init__(
        self,
        core: CoreSettings,
        telegram: TelegramSettings,
        discord: DiscordSettings,
        *,
        guild_ready_timeout: float = 2.0,
        resolver: Resolver | None = None,
    ) -> None:
        codecs: dict[str, OriginCodec] = {}
        if telegram.telegram_bot_token:
            codecs["telegram"] = telegram_origins(telegram.telegram_bot_token.get_secret_value())
        if discord.discord_bot_token:
            codecs["discord"] = discord_origins()
        self.engine = Engine(core, codecs, resolver=resolver)
        self.telegram = (
            TelegramAdapter(telegram, self.engine.intake, self.engine.retry)
            if telegram.telegram_bot_token
            else None
        )
        self.discord = (
            DiscordAdapter(
                discord,
                self.engine.intake,
                self.engine.retry,
                guild_ready_timeout=guild_ready_timeout,
            )
            if discord.discord_bot_token
            else None
        )
        self._stopping: asyncio.Task[None] | None = None

    @staticmethod
    def secrets(telegram: TelegramSettings, discord: DiscordSettings) -> list[str]:
        """The tokens set, which logs must never show."""
        tokens = (telegram.telegram_bot_token, discord.discord_bot_token)
        return [token.get_secret_value() for token in tokens if token]

    async def start(self) -> None:
        repliers: dict[str, Replier] = {}
        if self.telegram:
            repliers["telegram"] = self.telegram.replier
        if self.discord:
            repliers["discord"] = self.discord.replier
        await self.engine.start(repliers)
        if self.telegram:
            await self.telegram.start()
        if self.discord:
            await self.discord.start()

    async def stop(self) -> None:
        """Stop taking updates, let the engine finish or tell its jobs, then close the clients.

        Telegram stops polling first: updates it has not taken wait for the next start. Discord
        stays connected while the engine drains, so late requests hear "restarting". A second
        call waits for the first.
        """
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop())
        await asyncio.shield(self._stopping)

    def hurry(self) -> None:
        """Cut the grace of a stop short: jobs still running are told to resend at once."""
        self.engine.hurry()

    async def _stop(self) -> None:
        if self.telegram:
            await self.telegram.stop_polling()
        # Jobs next: a job still running must not find its platform client closed.
        await self.engine.stop()
        if self.telegram:
            await self.telegram.stop()
        if self.discord:
            await self.discord.stop()
