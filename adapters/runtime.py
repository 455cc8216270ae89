"""Runs the core with every adapter whose token is set, in one process: one queue, one cap."""

from __future__ import annotations

from adapters.discord import DiscordAdapter, DiscordSettings
from adapters.telegram import TelegramAdapter, TelegramSettings
from bot.engine import Engine
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
        self.engine = Engine(core, resolver=resolver)
        self.telegram = (
            TelegramAdapter(telegram, self.engine.intake) if telegram.telegram_bot_token else None
        )
        self.discord = (
            DiscordAdapter(discord, self.engine.intake, guild_ready_timeout=guild_ready_timeout)
            if discord.discord_bot_token
            else None
        )

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
        # Jobs first: a job still running must not find its platform client closed.
        await self.engine.stop()
        if self.telegram:
            await self.telegram.stop()
        if self.discord:
            await self.discord.stop()
