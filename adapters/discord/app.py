"""The discord.py client: slash command, message command, optional auto-detect, start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import discord
import yarl
from discord import app_commands

from adapters.discord.inbound import interaction_origin, message_budget, message_origin, texts_of
from adapters.discord.outbound import DiscordReplier
from adapters.discord.settings import DiscordSettings
from bot.intake import SLOW_DOWN_TEXT, Answer, Intake, Sender
from bot.retry import Retrying

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0


class DiscordAdapter:
    """Translates interactions and messages into core requests; the core answers via `replier`."""

    def __init__(
        self,
        settings: DiscordSettings,
        intake: Intake,
        retry: Retrying,
        *,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        if not settings.discord_bot_token:
            raise ValueError("DISCORD_BOT_TOKEN is not set")
        self._token = settings.discord_bot_token
        self._settings = settings
        self._intake = intake
        intents = discord.Intents.none()
        intents.guilds = True
        if settings.discord_message_content:
            intents.guild_messages = intents.dm_messages = intents.message_content = True
        self.client = discord.Client(intents=intents, guild_ready_timeout=guild_ready_timeout)
        self.tree = app_commands.CommandTree(self.client)
        self.replier = DiscordReplier(self.client, retry)
        self._connection: asyncio.Task[None] | None = None
        self._library_urls: tuple[str, yarl.URL] | None = None
        self._register_commands()
        if settings.discord_message_content:
            self.client.event(self._auto_detect_listener())

    def _register_commands(self) -> None:
        @self.tree.command(name="download", description="Send the video behind a TikTok link")
        @app_commands.describe(url="A TikTok link, e.g. https://vm.tiktok.com/…")
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def download(interaction: discord.Interaction, url: str) -> None:
            await self._take_command(interaction, [url])

        @self.tree.context_menu(name="Download video")
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def download_video(
            interaction: discord.Interaction, message: discord.Message
        ) -> None:
            await self._take_command(interaction, texts_of(message))

    def _auto_detect_listener(self) -> Callable[[discord.Message], Coroutine[Any, Any, None]]:
        async def on_message(message: discord.Message) -> None:
            if message.author.bot:
                return
            private = message.guild is None
            answer = self._intake.take(
                texts_of(message),
                message_origin(message),
                message_budget(message),
                private=private,
                sender=Sender(user=message.author.id, chat=message.channel.id),
            )
            text = self._intake.say(answer)
            if text is not None:
                await message.reply(text, mention_author=False)

        return on_message

    async def _take_command(self, interaction: discord.Interaction, texts: Sequence[str]) -> None:
        origin = interaction_origin(interaction)
        sender = Sender(
            user=interaction.user.id, chat=interaction.channel_id or interaction.user.id
        )
        request = self._intake.request(
            texts, origin, interaction.filesize_limit, private=True, sender=sender
        )
        if isinstance(request, Answer):
            # Only the invoker sees an ephemeral answer, so even a repeated refusal spams no one;
            # a command must be answered, so a quiet refusal says "slow down" too.
            text = self._intake.say(request) or SLOW_DOWN_TEXT
            await interaction.response.send_message(text, ephemeral=True)
            return
        # Acknowledge first: Discord allows 3 s, and a worker may answer before this returns.
        try:
            await interaction.response.defer(thinking=True)
        except discord.NotFound as err:
            # Past the 3 s: the request is still taken; the answer goes to the channel.
            log.warning("interaction not acknowledged in time (%s)", err.code)
        refused = self._intake.say(self._intake.submit(request))
        if refused is not None:
            await self.replier.tell_privately(origin, refused)

    async def start(self) -> None:
        # discord.py reads both from class attributes only (DESIGN.md section 7); stop() puts
        # the library's own values back.
        self._library_urls = (
            discord.http.Route.BASE,
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
        )
        discord.http.Route.BASE = self._settings.discord_api_url.rstrip("/")
        if self._settings.discord_gateway_url:
            gateway = yarl.URL(self._settings.discord_gateway_url)
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
        await self.client.login(self._token.get_secret_value())
        await self._sync_commands()
        self._connection = asyncio.create_task(self.client.connect(), name="discord-gateway")
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait(
            [self._connection, ready], timeout=READY_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
        if self._connection in done:
            ready.cancel()
            self._connection.result()
            raise RuntimeError("the Discord gateway closed before the client was ready")
        if ready not in done:
            ready.cancel()
            raise TimeoutError("the Discord gateway did not get ready")

    async def _sync_commands(self) -> None:
        guild_id = self._settings.discord_command_guild_id
        if guild_id is None:
            synced = await self.tree.sync()
        else:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        log.info(
            "Discord: %d commands synced %s",
            len(synced),
            f"to guild {guild_id}" if guild_id else "globally",
        )

    async def stop(self) -> None:
        await self.client.close()
        if self._connection is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._connection
            self._connection = None
        if self._library_urls is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
                self._library_urls
            )
            self._library_urls = None
