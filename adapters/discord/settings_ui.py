"""/settings on Discord: an ephemeral message of select menus and buttons, and what a press does.

A server's settings are its members' with Manage Server; one channel may override whether pasted
links are answered. In a DM the settings are the person's own. The custom ids hold no state
("set:caption", "set:auto:channel:on"): a press works after a restart and in any process, since
the settings are read again from the store and the permission checked again from the press.
The message uses Discord's layout components (components v2): six select menus and two rows of
buttons are more than the five rows a plain message may hold.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot.chat_settings import (
    LABELS,
    OFFERED,
    SETTING_BUTTON_TEXT,
    AutoDetect,
    ChatSettings,
    Choice,
    OriginalMessage,
    chat_key,
    chosen,
    current,
    server_key,
)
from bot.i18n import N_, Catalogues
from bot.ports import ChatSettingsStore
from bot.trending import TrendingBoard

log = logging.getLogger(__name__)

SETTINGS_DESCRIPTION = N_("Choose how I answer links in this server")
SERVER_SETTINGS_TEXT = N_("My settings for this server (only you see this):")
OWN_SETTINGS_TEXT = N_("Your settings, for the links you send me here:")
MANAGERS_ONLY_TEXT = N_("Only members who may manage this server can change my settings.")
CANNOT_DELETE_TEXT = N_(
    "I can't delete messages in this channel: give me Manage Messages there, or I keep them."
)
SETTINGS_UNAVAILABLE_TEXT = N_("I can't reach my settings right now, please try again in a minute.")
SERVER_LABEL = N_("Server")
CHANNEL_LABEL = N_("This channel")
# A channel's own choice about pasted links; None: as the server chose.
CHANNEL_AUTO_DETECT: tuple[Choice, ...] = (
    Choice(None, N_("as the server")),
    Choice(AutoDetect.ON, N_("always answered")),
    Choice(AutoDetect.ON_REQUEST, N_("only with /download")),
)

PLATFORM = "discord"
_PREFIX = "set:"
_AUTO_SERVER = "set:auto:server:"
_AUTO_CHANNEL = "set:auto:channel:"
# One select menu each, in this order; a DM has no message of someone else to act on.
_SELECTED = ("caption", "original", "failures", "slideshow", "language", "trending")
_NOT_IN_DMS = frozenset({"original"})


@dataclass(frozen=True, slots=True)
class _Place:
    """Where /settings was opened: a server's channel, or a DM (guild None)."""

    guild_id: int | None
    channel_id: int

    @property
    def key(self) -> str:
        """Where the server's settings live; in a DM, the person's own."""
        if self.guild_id is None:
            return chat_key(PLATFORM, self.channel_id)
        return server_key(PLATFORM, self.guild_id)


class DiscordSettingsUi:
    """Opens /settings and handles its presses; `chat_settings` is read at each use (the engine
    opens the store after the adapter is built)."""

    def __init__(
        self,
        chat_settings: Callable[[], ChatSettingsStore | None],
        texts: Catalogues,
        trending: TrendingBoard | None = None,
    ) -> None:
        self._chat_settings = chat_settings
        self._texts = texts
        self._trending = trending

    async def open(self, interaction: discord.Interaction) -> None:
        """The answer to /settings: the settings as components, to the invoker only."""
        place = _place(interaction)
        if place is None:
            return
        if not _may_change(interaction, place):
            await self._say(interaction, MANAGERS_ONLY_TEXT)
            return
        try:
            view = await self._view(interaction, place)
        except Exception as err:
            log.warning("chat settings unreachable: %r", err)
            await self._say(interaction, SETTINGS_UNAVAILABLE_TEXT)
            return
        await interaction.response.send_message(view=view, ephemeral=True)

    def listener(self) -> Callable[[discord.Interaction], Coroutine[Any, Any, None]]:
        """The client's on_interaction: presses on /settings components."""

        async def on_interaction(interaction: discord.Interaction) -> None:
            if interaction.type is not discord.InteractionType.component:
                return
            custom_id = _data(interaction).get("custom_id")
            if isinstance(custom_id, str) and custom_id.startswith(_PREFIX):
                await self.press(interaction, custom_id)

        return on_interaction

    async def press(self, interaction: discord.Interaction, custom_id: str) -> None:
        """Save the choice a press names and show the settings again, in the same message; a
        press by someone who may not change them changes nothing."""
        place = _place(interaction)
        if place is None:
            return
        if not _may_change(interaction, place):
            await self._say(interaction, MANAGERS_ONLY_TEXT)
            return
        try:
            await self._save(place, custom_id, _values(interaction))
            view = await self._view(interaction, place)
        except Exception as err:
            log.warning("chat settings unreachable: %r", err)
            await self._say(interaction, SETTINGS_UNAVAILABLE_TEXT)
            return
        await interaction.response.edit_message(view=view)

    async def _save(self, place: _Place, custom_id: str, values: Sequence[str]) -> None:
        store = self._store()
        if custom_id.startswith(_AUTO_SERVER) and place.guild_id is not None:
            wire, key, name = custom_id.removeprefix(_AUTO_SERVER), place.key, "auto_detect"
            offered = OFFERED[PLATFORM][name]
        elif custom_id.startswith(_AUTO_CHANNEL) and place.guild_id is not None:
            wire, name = custom_id.removeprefix(_AUTO_CHANNEL), "auto_detect"
            key, offered = chat_key(PLATFORM, place.channel_id), CHANNEL_AUTO_DETECT
        else:
            name = custom_id.removeprefix(_PREFIX)
            if name not in _shown_selects(place) or len(values) != 1:
                return  # from an older release, or not ours: the settings are shown again
            wire, key, offered = values[0], place.key, OFFERED[PLATFORM][name]
        choice = next((c for c in offered if _wire(c.value) == wire), None)
        if choice is None:
            return
        changed = chosen(await store.get(key), name, choice.value)
        await store.put(key, changed)
        if self._trending is not None:
            await self._trending.settings_saved(key, changed)

    async def _view(self, interaction: discord.Interaction, place: _Place) -> discord.ui.LayoutView:
        store = self._store()
        settings = await store.get(place.key)
        language = settings.language or str(interaction.locale)
        heading = SERVER_SETTINGS_TEXT if place.guild_id is not None else OWN_SETTINGS_TEXT
        lines = [self._texts.text(language, heading)]
        if (
            place.guild_id is not None
            and settings.original is OriginalMessage.DELETE
            and not interaction.app_permissions.manage_messages
        ):
            lines.append(self._texts.text(language, CANNOT_DELETE_TEXT))
        view = discord.ui.LayoutView(timeout=None)
        view.add_item(discord.ui.TextDisplay("\n".join(lines)))
        for name in _shown_selects(place):
            view.add_item(discord.ui.ActionRow(self._select(name, settings, language)))
        if place.guild_id is not None:
            override = await store.get(chat_key(PLATFORM, place.channel_id))
            view.add_item(discord.ui.TextDisplay(self._texts.text(language, LABELS["auto_detect"])))
            server_now = current(PLATFORM, settings, "auto_detect")
            view.add_item(
                self._buttons(
                    SERVER_LABEL,
                    _AUTO_SERVER,
                    OFFERED[PLATFORM]["auto_detect"],
                    server_now,
                    language,
                )
            )
            channel_now = next(
                (c for c in CHANNEL_AUTO_DETECT if c.value == override.auto_detect),
                CHANNEL_AUTO_DETECT[0],
            )
            view.add_item(
                self._buttons(
                    CHANNEL_LABEL, _AUTO_CHANNEL, CHANNEL_AUTO_DETECT, channel_now, language
                )
            )
        # Presses are read in on_interaction, so discord.py need not keep this view.
        view.stop()
        return view

    def _select(
        self, name: str, settings: ChatSettings, language: str
    ) -> discord.ui.Select[discord.ui.LayoutView]:
        now = current(PLATFORM, settings, name)
        label = self._texts.text(language, LABELS[name])
        options = [
            discord.SelectOption(
                label=self._texts.text(
                    language,
                    SETTING_BUTTON_TEXT,
                    label=label,
                    value=self._texts.text(language, choice.label),
                )[:100],
                value=_wire(choice.value),
                default=choice == now,
            )
            for choice in OFFERED[PLATFORM][name]
        ]
        return discord.ui.Select(custom_id=f"{_PREFIX}{name}", placeholder=label, options=options)

    def _buttons(
        self,
        label: str,
        prefix: str,
        offered: Sequence[Choice],
        now: Choice,
        language: str,
    ) -> discord.ui.ActionRow[discord.ui.LayoutView]:
        """One button per choice; the current one stands out."""
        row: discord.ui.ActionRow[discord.ui.LayoutView] = discord.ui.ActionRow()
        for choice in offered:
            text = self._texts.text(
                language,
                SETTING_BUTTON_TEXT,
                label=self._texts.text(language, label),
                value=self._texts.text(language, choice.label),
            )
            row.add_item(
                discord.ui.Button(
                    label=text[:80],
                    custom_id=f"{prefix}{_wire(choice.value)}",
                    style=discord.ButtonStyle.primary
                    if choice == now
                    else discord.ButtonStyle.secondary,
                )
            )
        return row

    def _store(self) -> ChatSettingsStore:
        store = self._chat_settings()
        if store is None:
            raise RuntimeError("the chat settings are not open")
        return store

    async def _say(self, interaction: discord.Interaction, text: str) -> None:
        """One ephemeral line to the person who pressed or asked, in their language."""
        line = self._texts.text(str(interaction.locale), text)
        await interaction.response.send_message(line, ephemeral=True)


def _place(interaction: discord.Interaction) -> _Place | None:
    if interaction.channel_id is None:
        return None
    return _Place(interaction.guild_id, interaction.channel_id)


def _may_change(interaction: discord.Interaction, place: _Place) -> bool:
    """A DM's settings are the person's own; a server's need Manage Server, checked on every
    use: the command's default permission can be overridden by the server, and a message
    opened before stays usable after the permission was taken away."""
    return place.guild_id is None or interaction.permissions.manage_guild


def _shown_selects(place: _Place) -> tuple[str, ...]:
    if place.guild_id is None:
        return tuple(name for name in _SELECTED if name not in _NOT_IN_DMS)
    return _SELECTED


def _data(interaction: discord.Interaction) -> dict[str, Any]:
    data = interaction.data
    return dict(data) if data is not None else {}


def _values(interaction: discord.Interaction) -> list[str]:
    values = _data(interaction).get("values")
    return [str(value) for value in values] if isinstance(values, list) else []


def _wire(value: object) -> str:
    """A choice as a component's value or custom id part: short, and never ambiguous within
    one setting."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)
