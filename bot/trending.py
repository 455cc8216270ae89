"""A chat's trending clips (/top): what was reshared there in the last 7 days, counted by clip
whatever link form was pasted, unless the chat turned counting off (then it is forgotten)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from bot.chat_settings import ChatSettings, chat_key, server_key
from bot.i18n import N_, Catalogues
from bot.links import SITE, post_link
from bot.model import Sender
from bot.ports import Trending, TrendingClip

log = logging.getLogger(__name__)

WINDOW_S = 7 * 24 * 3600
TOP_SIZE = 5

TOP_HEADING_TEXT = N_("Most reshared here in the last 7 days:")
# One clip of the list: its rank, link, how many times (🔁) and by how many people (👤).
TOP_LINE_TEXT = N_("{rank}. {link} — 🔁 {times} · 👤 {people}")
TOP_EMPTY_TEXT = N_("Nothing reshared here in the last 7 days yet: paste a TikTok link!")
TOP_DESCRIPTION = N_("The clips most reshared here this week")
TOP_OFF_TEXT = N_("/top is off here: a chat's admins can turn it on in /settings.")
TOP_UNREACHABLE_TEXT = N_("I can't read this chat's top clips right now, please try again later.")


AGAIN_PREFIX = "again:"


def again_data(clip_id: str) -> str | None:
    """A /top button's data ("again:tiktok:<id>"): TikTok clips only, whose link the id alone
    rebuilds (another site's id may not fit a button's 64 bytes)."""
    site, _, post = clip_id.partition(":")
    if site != SITE:
        return None
    try:
        post_link(post)
    except ValueError:
        return None
    return f"{AGAIN_PREFIX}{clip_id}"


def again_link(data: str) -> str | None:
    """The canonical link a /top button's data names; None for data that names none."""
    site, _, post = data.removeprefix(AGAIN_PREFIX).partition(":")
    if not data.startswith(AGAIN_PREFIX) or site != SITE:
        return None
    try:
        return post_link(post)
    except ValueError:
        return None


def listing(clips: Sequence[TrendingClip], texts: Catalogues, language: str | None) -> str:
    """/top's answer in a language: the heading, then one line per clip."""
    lines = [texts.text(language, TOP_HEADING_TEXT)]
    lines.extend(
        texts.text(
            language, TOP_LINE_TEXT, rank=rank, link=clip.link, times=clip.times, people=clip.people
        )
        for rank, clip in enumerate(clips, start=1)
    )
    return "\n".join(lines)


def board_key(platform: str, sender: Sender) -> str:
    """Where reshares are counted: a whole server (a Discord guild), else the chat."""
    if sender.server is not None:
        return server_key(platform, sender.server)
    return chat_key(platform, sender.chat)


class TrendingBoard:
    """Counts reshares and reads a chat's top clips through the `Trending` store, which the
    engine opens at start (`store` is read on each use)."""

    def __init__(
        self,
        store: Callable[[], Trending | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock

    async def count(self, platform: str, sender: Sender, clip_id: str, link: str) -> None:
        """One reshare; a store out of reach costs the count, never the answer."""
        store = self._store()
        if store is None:
            return
        try:
            await store.count(
                board_key(platform, sender), clip_id, link, str(sender.user), self._clock()
            )
        except Exception as err:
            log.warning("could not count a reshare: %r", err)

    async def top(
        self, platform: str, sender: Sender, settings: ChatSettings
    ) -> list[TrendingClip] | str:
        """The chat's most reshared clips of the last 7 days, or what to say instead (a
        message id): that counting is off, that nothing was reshared, or to try again later
        when the counts cannot be read."""
        if settings.trending is False:
            return TOP_OFF_TEXT
        store = self._store()
        if store is None:
            return TOP_EMPTY_TEXT
        try:
            clips = await store.top(board_key(platform, sender), self._clock() - WINDOW_S, TOP_SIZE)
        except Exception as err:
            log.warning("trending counts unreachable: %r", err)
            return TOP_UNREACHABLE_TEXT
        return clips or TOP_EMPTY_TEXT

    async def settings_saved(self, key: str, settings: ChatSettings) -> None:
        """A chat (or server) that turned counting off is forgotten at once."""
        store = self._store()
        if store is not None and settings.trending is False:
            await store.forget(key)
