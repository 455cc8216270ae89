"""The discord.py client: slash command, message command, optional auto-detect, start and stop.

One `AutoShardedClient` in every role. A receiver connects the gateway shards given by
DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS (all that Discord recommends when unset) and acknowledges
interactions; a worker only logs in: followups go through the interaction's webhook and channel
replies through REST, neither needs the gateway (DESIGN.md section 13).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import discord
import yarl
from discord import app_commands

from adapters.discord.inbound import (
    interaction_origin,
    interaction_sender,
    message_budget,
    message_origin,
    message_sender,
    texts_of,
)
from adapters.discord.outbound import DiscordOperatorChannel, DiscordReplier
from adapters.discord.settings import DiscordSettings
from adapters.discord.settings_ui import SETTINGS_DESCRIPTION, DiscordSettingsUi
from bot.i18n import N_, Catalogues, language_of
from bot.intake import SLOW_DOWN_TEXT, Answer, Intake
from bot.model import Want
from bot.ports import ChatSettingsStore
from bot.retry import Retrying
from bot.sound import SOUND_PREFIX, sound_link
from bot.trending import (
    AGAIN_PREFIX,
    TOP_DESCRIPTION,
    TOP_EMPTY_TEXT,
    TrendingBoard,
    again_data,
    again_link,
    listing,
)

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
# discord.py waits this long before each IDENTIFY after a process's first (Discord's default
# max_concurrency of 1); a receiver of many shards needs that much longer to get ready.
IDENTIFY_INTERVAL_S = 5.0


class _LibraryUrls:
    """discord.py reads the REST root and the gateway from class attributes only (DESIGN.md
    section 7): pointed at the settings while any adapter runs, the library's own values put back
    when the last one stops."""

    users = 0
    saved: tuple[str, yarl.URL] | None = None

    @classmethod
    def point_at(cls, settings: DiscordSettings) -> None:
        if cls.users == 0:
            cls.saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        cls.users += 1
        discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
        if settings.discord_gateway_url:
            gateway = yarl.URL(settings.discord_gateway_url)
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway

    @classmethod
    def release(cls) -> None:
        cls.users -= 1
        if cls.users == 0 and cls.saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = cls.saved
            cls.saved = None


class CatalogueTranslator(app_commands.Translator):
    """The commands' descriptions (and the context menu's name) in each catalogue language, as
    Discord shows them by the person's locale; None (Discord shows the English) elsewhere."""

    def __init__(self, texts: Catalogues) -> None:
        self._texts = texts

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        translations = self._texts.translations.get(language_of(locale.value), {})
        return translations.get(string.message)


class DiscordAdapter:
    """Translates interactions and messages into core requests; the core answers via `replier`."""

    def __init__(
        self,
        settings: DiscordSettings,
        intake: Intake,
        retry: Retrying,
        *,
        guild_ready_timeout: float = 2.0,
        chat_settings: Callable[[], ChatSettingsStore | None] | None = None,
        texts: Catalogues | None = None,
        trending: TrendingBoard | None = None,
    ) -> None:
        """`chat_settings` gives the store /settings edits (none: /settings says it is
        unavailable); `texts` are the message catalogues."""
        if not settings.discord_bot_token:
            raise ValueError("DISCORD_BOT_TOKEN is not set")
        self._token = settings.discord_bot_token
        self._settings = settings
        self._intake = intake
        intents = discord.Intents.none()
        intents.guilds = True
        if settings.discord_message_content:
            intents.guild_messages = intents.dm_messages = intents.message_content = True
        # Unset, the count is Discord's recommendation (asked in `start`) and all shards run here.
        count, ids = settings.discord_shard_count, settings.discord_shard_ids
        if ids is None:
            self.client = discord.AutoShardedClient(
                intents=intents, guild_ready_timeout=guild_ready_timeout, shard_count=count
            )
        else:
            self.client = discord.AutoShardedClient(
                intents=intents,
                guild_ready_timeout=guild_ready_timeout,
                shard_count=count,
                shard_ids=list(ids),
            )
        self.tree = app_commands.CommandTree(self.client)
        self._texts = texts or Catalogues.load()
        self.replier = DiscordReplier(self.client, retry, self._texts)
        self.operator_channel = (
            DiscordOperatorChannel(self.client, settings.operator_discord_channel_id, retry)
            if settings.operator_discord_channel_id is not None
            else None
        )
        self._connection: asyncio.Task[None] | None = None
        self._receiving = False
        self._started = False
        self._urls_pointed = False
        self._trending = trending
        self._settings_ui = DiscordSettingsUi(
            chat_settings or (lambda: None), self._texts, trending
        )
        self._register_commands()
        self.client.event(self._component_listener())
        if settings.discord_message_content:
            self.client.event(self._auto_detect_listener())

    def _register_commands(self) -> None:
        """Both commands installable to a server and to a user's account, and usable in
        servers, the bot's DMs and other DMs and group DMs (a user install reaches those)."""

        @self.tree.command(name="download", description=N_("Send the video behind a TikTok link"))
        @app_commands.describe(
            url=N_("A TikTok link, e.g. https://vm.tiktok.com/…"),
            private=N_("Only you see the video"),
        )
        @app_commands.allowed_installs(guilds=True, users=True)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def download(
            interaction: discord.Interaction, url: str, private: bool = False
        ) -> None:
            await self._take_command(interaction, [url], private=private)

        @self.tree.context_menu(name=N_("Download video"))
        @app_commands.allowed_installs(guilds=True, users=True)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def download_video(
            interaction: discord.Interaction, message: discord.Message
        ) -> None:
            await self._take_command(interaction, texts_of(message))

        @self.tree.command(name="top", description=TOP_DESCRIPTION)
        @app_commands.allowed_installs(guilds=True, users=False)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
        async def top(interaction: discord.Interaction) -> None:
            await self._show_top(interaction)

        @self.tree.command(name="audio", description=N_("Send the sound of a TikTok video"))
        @app_commands.describe(url=N_("A TikTok link, e.g. https://vm.tiktok.com/…"))
        @app_commands.allowed_installs(guilds=True, users=True)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def audio(interaction: discord.Interaction, url: str) -> None:
            await self._take_command(interaction, [url], want=Want.AUDIO)

        # Server-wide by default to those with Manage Server (a server may change that, so the
        # permission is checked again on every use); in the bot's DM, the person's own.
        @self.tree.command(name="settings", description=SETTINGS_DESCRIPTION)
        @app_commands.default_permissions(manage_guild=True)
        @app_commands.allowed_installs(guilds=True, users=False)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
        async def settings(interaction: discord.Interaction) -> None:
            await self._settings_ui.open(interaction)

    def _component_listener(self) -> Callable[[discord.Interaction], Coroutine[Any, Any, None]]:
        """The client's one on_interaction, for presses on components by their custom id:
        "🎵 Sound" under a video here, the rest to /settings (commands go to the tree)."""
        settings = self._settings_ui.listener()

        async def on_interaction(interaction: discord.Interaction) -> None:
            data: Mapping[str, object] = interaction.data or {}
            custom_id = data.get("custom_id")
            if (
                interaction.type is discord.InteractionType.component
                and isinstance(custom_id, str)
                and custom_id.startswith(SOUND_PREFIX)
            ):
                link = sound_link(custom_id)
                if link is not None:
                    await self._take_command(interaction, [link], want=Want.AUDIO)
                return
            if (
                interaction.type is discord.InteractionType.component
                and isinstance(custom_id, str)
                and custom_id.startswith(AGAIN_PREFIX)
            ):
                again = again_link(custom_id)
                if again is not None:
                    await self._take_command(interaction, [again])
                return
            await settings(interaction)

        return on_interaction

    def _auto_detect_listener(self) -> Callable[[discord.Message], Coroutine[Any, Any, None]]:
        async def on_message(message: discord.Message) -> None:
            if message.author.bot:
                return
            private = message.guild is None
            sender = message_sender(message)
            answer = await self._intake.take(
                texts_of(message),
                message_origin(message),
                message_budget(message),
                private=private,
                sender=sender,
            )
            text = await self._intake.say_to(answer, "discord", sender)
            if text is not None:
                await message.reply(text, mention_author=False)

        return on_message

    async def _show_top(self, interaction: discord.Interaction) -> None:
        """/top: the server's (or DM's) most reshared clips of the week, with buttons that send
        each again; in the channel, for everyone."""
        sender = interaction_sender(interaction)
        chosen = await self._intake.settings_of("discord", sender)
        language = chosen.language or sender.language
        clips = (
            await self._trending.top("discord", sender, chosen)
            if self._trending is not None
            else TOP_EMPTY_TEXT
        )
        if isinstance(clips, str):
            text = self._texts.text(language, clips)
            await interaction.response.send_message(text, ephemeral=True)
            return
        view = discord.ui.View(timeout=None)
        for rank, clip in enumerate(clips, start=1):
            data = again_data(clip.clip_id)
            if data is not None:
                view.add_item(discord.ui.Button(label=f"▶️ {rank}", custom_id=data))
        await interaction.response.send_message(
            listing(clips, self._texts, language), view=view, suppress_embeds=True
        )

    async def _take_command(
        self,
        interaction: discord.Interaction,
        texts: Sequence[str],
        *,
        private: bool = False,
        want: Want = Want.VIDEO,
    ) -> None:
        """Answered only through the interaction (where only the invoker installed the app,
        that is all the bot may use); `private` makes the answer ephemeral; `want` is the
        video or its sound (/audio, the "🎵 Sound" button)."""
        origin = interaction_origin(interaction, ephemeral=private)
        sender = interaction_sender(interaction)
        request = await self._intake.request(
            texts, origin, interaction.filesize_limit, private=True, sender=sender, want=want
        )
        if isinstance(request, Answer):
            # Only the invoker sees an ephemeral answer, so even a repeated refusal spams no one;
            # a command must be answered, so a quiet refusal says "slow down" too.
            language = await self._intake.language("discord", sender)
            text = self._intake.say(request, language) or self._texts.text(language, SLOW_DOWN_TEXT)
            await interaction.response.send_message(text, ephemeral=True)
            return
        # Acknowledge first: Discord allows 3 s, and a worker may answer before this returns.
        # Ephemeral can be chosen only here.
        try:
            await interaction.response.defer(thinking=True, ephemeral=private)
        except discord.NotFound as err:
            if not origin.answerable_in_channel:
                # Nowhere left to answer: not a channel the bot is in, or a private answer.
                log.warning("interaction not acknowledged in time (%s): dropped", err.code)
                return
            # Past the 3 s: the request is still taken; the answer goes to the channel.
            log.warning("interaction not acknowledged in time (%s)", err.code)
        refused = self._intake.say(await self._intake.submit(request), request.manner.language)
        if refused is not None:
            await self.replier.tell_privately(origin, refused)

    async def start(self, receive: bool = True) -> None:
        """Log in; a receiver (`receive`) also syncs the commands, connects its gateway shards
        and returns once they are ready. A worker (`receive=False`) stops at logging in: REST
        alone answers interactions and messages."""
        self._started = True
        _LibraryUrls.point_at(self._settings)
        self._urls_pointed = True
        await self.client.login(self._token.get_secret_value())
        if not receive:
            log.info("Discord: logged in for REST only (no gateway)")
            return
        self._receiving = True
        await self.tree.set_translator(CatalogueTranslator(self._texts))
        await self._sync_commands()
        if self.client.shard_count is None:
            # Asked here, not by discord.py: it would make its first connection to the URL this
            # answer names, ignoring DISCORD_GATEWAY_URL (its reconnects use that setting).
            self.client.shard_count, _, _ = await self.client.http.get_bot_gateway()
        shards = self.client.shard_ids or range(self.client.shard_count)
        log.info("Discord: connecting shard(s) %s of %d", _ranges(shards), self.client.shard_count)
        self._connection = asyncio.create_task(self.client.connect(), name="discord-gateway")
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait(
            [self._connection, ready],
            timeout=READY_TIMEOUT_S + IDENTIFY_INTERVAL_S * (len(shards) - 1),
            return_when="FIRST_COMPLETED",
        )
        if self._connection in done:
            ready.cancel()
            self._connection.result()
            raise RuntimeError("the Discord gateway closed before the client was ready")
        if ready not in done:
            ready.cancel()
            raise TimeoutError("the Discord gateway did not get ready")

    def connected(self) -> bool:
        """For health checks: a receiver has every shard ready and connected; a worker is
        logged in. False before `start` and after `stop`."""
        client = self.client
        if client.is_closed() or client.user is None:
            return False
        if not self._receiving:
            return True
        return (
            self._connection is not None
            and not self._connection.done()
            and client.is_ready()
            and all(not shard.is_closed() for shard in client.shards.values())
        )

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
        if self._started:
            # An AutoShardedClient never logged in cannot be closed (its queue does not exist).
            await self.client.close()
        if self._connection is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._connection
            self._connection = None
        if self._urls_pointed:
            _LibraryUrls.release()
            self._urls_pointed = False


def _ranges(ids: Sequence[int]) -> str:
    """Shard ids as DISCORD_SHARD_IDS writes them: "0-3,6"."""
    parts: list[str] = []
    for n in sorted(ids):
        if parts and n == int(parts[-1].rpartition("-")[2]) + 1:
            parts[-1] = f"{parts[-1].partition('-')[0]}-{n}"
        else:
            parts.append(str(n))
    return ",".join(parts)
