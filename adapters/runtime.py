"""Runs the core with every adapter whose token is set: all in one process, or one role of the
distributed mode (a receiver takes platform events and queues jobs; a worker runs them)."""

from __future__ import annotations

import asyncio
import enum
import hashlib
from typing import TYPE_CHECKING

from pydantic import SecretStr

from adapters.discord import DiscordSettings
from adapters.telegram import TelegramAdapter, TelegramSettings
from adapters.telegram.inbound import origin_codec as telegram_origins
from bot.codec import OriginCodec
from bot.download_process import EarlyChild
from bot.engine import Engine
from bot.netguard import Resolver
from bot.ports import Replier
from bot.settings import CoreSettings
from bot.webserver import Health, OpsServer

if TYPE_CHECKING:
    from adapters.discord.app import DiscordAdapter


def pseudonym_key(*tokens: SecretStr | None) -> bytes:
    """The key of /top's pseudonyms, derived from the bot's tokens: every process of a
    deployment has them (it answers with them), and the counts' store never holds them. A new
    token starts new pseudonyms, so for a week a person may count twice."""
    digest = hashlib.sha256(b"reshare trending pseudonyms")
    for token in tokens:
        digest.update(b"\0" + (token.get_secret_value().encode() if token is not None else b""))
    return digest.digest()


class Role(enum.Enum):
    """What a process does: everything (`python -m bot`), or one side of the distributed mode."""

    ALL = "all"
    RECEIVE = "receive"
    WORK = "work"


class Reshare:
    """The whole bot: one engine, the configured platforms around it."""

    def __init__(
        self,
        core: CoreSettings,
        telegram: TelegramSettings,
        discord: DiscordSettings,
        *,
        role: Role = Role.ALL,
        guild_ready_timeout: float = 2.0,
        resolver: Resolver | None = None,
        early: EarlyChild | None = None,
    ) -> None:
        codecs: dict[str, OriginCodec] = {}
        if telegram.telegram_bot_token:
            codecs["telegram"] = telegram_origins(telegram.telegram_bot_token.get_secret_value())
        if discord.discord_bot_token:
            # Imported here: a process without a Discord token does not carry discord.py's memory.
            from adapters.discord.inbound import origin_codec as discord_origins

            codecs["discord"] = discord_origins()
        self.role = role
        self.engine = Engine(
            core,
            codecs,
            resolver=resolver,
            work=role is not Role.RECEIVE,
            pseudonym_key=pseudonym_key(telegram.telegram_bot_token, discord.discord_bot_token),
            early=early,
        )
        self.telegram = (
            TelegramAdapter(
                telegram,
                self.engine.intake,
                self.engine.retry,
                self.engine.send_limits,
                inline=self.engine.inline,
                chat_settings=lambda: self.engine.chat_settings,
                texts=self.engine.texts,
                trending=self.engine.trending_board,
            )
            if telegram.telegram_bot_token
            else None
        )
        self.discord: DiscordAdapter | None = None
        if discord.discord_bot_token:
            from adapters.discord.app import DiscordAdapter  # memory: see the codec above

            self.discord = DiscordAdapter(
                discord,
                self.engine.intake,
                self.engine.retry,
                guild_ready_timeout=guild_ready_timeout,
                chat_settings=lambda: self.engine.chat_settings,
                texts=self.engine.texts,
                trending=self.engine.trending_board,
            )
        for adapter in (self.telegram, self.discord):
            if adapter is not None and adapter.operator_channel is not None:
                self.engine.watch.tell(adapter.operator_channel)
        receiving = role is not Role.WORK
        if receiving and self.telegram and self.telegram.webhook_path and core.port is None:
            raise ValueError("TELEGRAM_WEBHOOK_URL needs PORT: the webhook is served there")
        self.ops = (
            OpsServer(core.host, core.port, self.engine.metrics, [self._health])
            if core.port is not None
            else None
        )
        if self.ops and self.telegram and self.telegram.webhook_path and receiving:
            self.ops.add_route("POST", self.telegram.webhook_path, self.telegram.on_webhook)
        self._stopping: asyncio.Task[None] | None = None

    @staticmethod
    def secrets(telegram: TelegramSettings, discord: DiscordSettings) -> list[str]:
        """The tokens and secrets set, which logs must never show."""
        values = (
            telegram.telegram_bot_token,
            telegram.telegram_webhook_secret,
            discord.discord_bot_token,
        )
        return [value.get_secret_value() for value in values if value]

    async def start(self) -> None:
        repliers: dict[str, Replier] = {}
        if self.telegram:
            repliers["telegram"] = self.telegram.replier
        if self.discord:
            repliers["discord"] = self.discord.replier
        await self.engine.start(repliers)
        receive = self.role is not Role.WORK
        if self.ops:
            # Before the webhook is set: Telegram may POST at once.
            await self.ops.start()
        if self.telegram:
            await self.telegram.start(receive=receive)
        if self.discord:
            await self.discord.start(receive=receive)

    async def _health(self) -> Health:
        down = [name for name, up in await self._connections() if not up]
        return Health("connections", not down, ", ".join(down) + " down" if down else "")

    async def _connections(self) -> list[tuple[str, bool]]:
        found = [("redis", await self.engine.redis_up())]
        if self.telegram:
            found.append(("telegram", self.telegram.connected()))
        if self.discord:
            found.append(("discord", self.discord.connected()))
        return found

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
        if self.ops:
            await self.ops.stop()
