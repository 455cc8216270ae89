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
import functools
import hashlib
import hmac
import logging
import os
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from telegram import (
    BotCommand,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResult,
    InlineQueryResultArticle,
    InlineQueryResultCachedVideo,
    InlineQueryResultsButton,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from adapters.telegram.inbound import (
    ButtonOrigin,
    InlineOrigin,
    asks_for_sound,
    asks_for_video,
    is_private,
    origin_of,
    person_message,
    texts_of,
)
from adapters.telegram.limiter import SharedRateLimiter
from adapters.telegram.outbound import TelegramOperatorChannel, TelegramReplier, retry_after_s
from adapters.telegram.request import AiohttpRequest
from adapters.telegram.settings import TelegramSettings
from bot.caption import make_caption
from bot.chat_settings import (
    OFFERED,
    SETTING_BUTTON_TEXT,
    ChatSettings,
    OriginalMessage,
    chat_key,
    next_choice,
    shown,
)
from bot.i18n import LANGUAGES, N_, SOURCE_LANGUAGE, Catalogues
from bot.inline import (
    FETCHING_TEXT,
    InlineAnswer,
    InlineCached,
    InlinePlaceholder,
    InlineQueries,
    InlineRefusal,
)
from bot.intake import HELP_TEXT, Answer, Intake
from bot.model import Sender, Want
from bot.ports import ChatSettingsStore, SendLimits
from bot.retry import Retrying
from bot.sound import SOUND_PREFIX, sound_link
from bot.trending import (
    AGAIN_PREFIX,
    TrendingBoard,
    again_data,
    again_link,
    listing,
)

log = logging.getLogger(__name__)

# Seconds to open a connection and to wait for a free one of PTB's pool.
CONNECT_TIMEOUT_S = 10.0
POOL_TIMEOUT_S = 30.0
# Connections to the Bot API for every call but getUpdates (PTB's default).
CONNECTIONS = 256

# Seconds one getUpdates call waits for updates (long polling).
POLL_TIMEOUT_S = 10
# After a batch of updates, the next long poll waits this many turns of the event loop:
# building it takes the loop about a millisecond, which otherwise lands between a cached
# clip's sendVideo steps. Turns, not a sleep: an idle loop passes them in microseconds.
NEXT_POLL_AFTER_TURNS = 10
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
# What the bot asks Telegram for: messages, and inline queries and the results people sent.
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.INLINE_QUERY,
    Update.CHOSEN_INLINE_RESULT,
    Update.CALLBACK_QUERY,
]
# Seconds Telegram may keep an inline answer: a clip sent before is the same for everyone; a
# placeholder is asked again, so that once the clip is fetched the next query offers it.
CACHED_RESULT_S = 300
PLACEHOLDER_RESULT_S = 0
# The deep link parameter of the inline hints' button (opens a private chat with the bot).
HINT_START = "inline"
SETTINGS_TEXT = N_("Settings for this chat (tap one to change it):")
ADMINS_ONLY_TEXT = N_("Only this group's admins can change my settings.")
SETTINGS_SAVED_TEXT = N_("Saved.")
# The command menu: each command and what it does (shown in the person's language).
COMMANDS = (
    ("download", N_("Send the video behind a TikTok link")),
    ("audio", N_("Send the sound of a TikTok video")),
    ("top", N_("The clips most reshared here this week")),
    ("settings", N_("How I behave in this chat")),
    ("help", N_("What I do")),
)
CANNOT_DELETE_TEXT = N_(
    "I can't delete messages here: make me an admin who may delete messages, or I keep them."
)
_SETTING = "set:"
_ADMINS = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR})


def _bot_api_request(timeout_s: float) -> AiohttpRequest:
    """PTB's HTTP client for every call but getUpdates (adapters.telegram.request). A slow
    answer is waited for: a call that timed out may have been carried out and is never sent
    again (bot.retry), so the timeouts are long."""
    return AiohttpRequest(
        connections=CONNECTIONS,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=timeout_s,
        write_timeout=timeout_s,
        pool_timeout=POOL_TIMEOUT_S,
    )


def _get_updates_request() -> AiohttpRequest:
    """The client for getUpdates: one connection, PTB's own timeouts for it (a long poll adds
    its wait to the read timeout)."""
    return AiohttpRequest(
        connections=1,
        connect_timeout=5.0,
        read_timeout=5.0,
        write_timeout=5.0,
        pool_timeout=1.0,
    )


class TelegramAdapter:
    """Translates updates into core requests; the core answers through `replier`."""

    def __init__(
        self,
        settings: TelegramSettings,
        intake: Intake,
        retry: Retrying,
        send_limits: SendLimits,
        inline: InlineQueries | None = None,
        chat_settings: Callable[[], ChatSettingsStore | None] | None = None,
        trending: TrendingBoard | None = None,
        texts: Catalogues | None = None,
    ) -> None:
        """`send_limits` counts Telegram's flood limits for the whole bot (every worker);
        `inline` answers inline queries (none: the bot ignores them); `texts` are the message
        catalogues (read from the package when not given)."""
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        # PTB 22 warns on every RetryAfter unless opted in to its timedelta durations.
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        root = settings.telegram_api_url.rstrip("/")
        self._intake = intake
        self._texts = texts or Catalogues.load()
        self._budget_bytes = settings.upload_limit_bytes
        self.application = (
            Application.builder()
            .token(settings.telegram_bot_token.get_secret_value())
            .base_url(f"{root}/bot")
            .base_file_url(f"{root}/file/bot")
            .request(_bot_api_request(settings.telegram_timeout_s))
            .get_updates_request(_get_updates_request())
            # It keeps to Telegram's flood limits; retrying a 429 is the core's (bot.retry),
            # under one deadline with the other retries.
            .rate_limiter(SharedRateLimiter(send_limits))
            .updater(None)
            .build()
        )
        self.replier = TelegramReplier(
            self.application.bot, retry, self._texts, settings.telegram_storage_chat_id
        )
        self._inline = inline
        self._chat_settings = chat_settings or (lambda: None)
        self._trending = trending
        self._new_inline_clips = settings.telegram_storage_chat_id is not None
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
        self._settings = CommandHandler(
            "settings", self._on_settings, filters=filters.UpdateType.MESSAGE
        )
        self._setting_buttons = CallbackQueryHandler(self._on_setting_button, pattern=_SETTING)
        self._top = CommandHandler("top", self._on_top, filters=filters.UpdateType.MESSAGE)
        self._again_buttons = CallbackQueryHandler(self._on_press, pattern=AGAIN_PREFIX)
        self._sound_buttons = CallbackQueryHandler(self._on_press, pattern=SOUND_PREFIX)
        self._inline_queries = InlineQueryHandler(self._on_inline_query)
        self._chosen = ChosenInlineResultHandler(self._on_chosen)
        self.application.add_handler(self._help)
        self.application.add_handler(self._settings)
        self.application.add_handler(self._setting_buttons)
        self.application.add_handler(self._top)
        self.application.add_handler(self._again_buttons)
        self.application.add_handler(self._sound_buttons)
        self.application.add_handler(self._messages)
        self.application.add_handler(self._inline_queries)
        self.application.add_handler(self._chosen)

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
        else:
            # Polling and a webhook exclude each other; updates waiting for us are kept.
            await bot.delete_webhook()
            self._polling = asyncio.create_task(self._poll(), name="telegram-polling")
        await self._publish_commands()

    async def _publish_commands(self) -> None:
        """The command menu people see when they type "/", in each catalogue's language."""
        bot = self.application.bot
        for language in LANGUAGES:
            commands = [
                BotCommand(name, self._texts.text(language, description))
                for name, description in COMMANDS
            ]
            try:
                await bot.set_my_commands(
                    commands, language_code=None if language == SOURCE_LANGUAGE else language
                )
            except TelegramError as err:
                log.warning("could not publish the command menu (%s): %r", language, err)
                return

    async def _set_webhook(self) -> None:
        """Telegram takes one setWebhook a second per bot: receivers starting together, or one
        restarted at once, wait their turn."""
        for attempt in range(1, SET_WEBHOOK_ATTEMPTS + 1):
            try:
                await self.application.bot.set_webhook(
                    self._webhook_url or "",
                    secret_token=self._webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
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
        elif any(
            handler.check_update(update)
            for handler in (self._settings, self._setting_buttons, self._top)
        ):
            self.application.create_task(self.application.process_update(update), update=update)
        elif self._sound_buttons.check_update(update) or self._again_buttons.check_update(update):
            if await self._take_press(update) in _COME_BACK:
                return web.Response(status=503, text="try again")
        elif self._messages.check_update(update):
            answer = await self._take(update)
            if answer in _COME_BACK:
                return web.Response(status=503, text="try again")
        elif self._inline_queries.check_update(update):
            self._answer_soon(update)
        elif self._chosen.check_update(update) and await self._take_chosen(update) in _COME_BACK:
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
                        offset=offset, timeout=POLL_TIMEOUT_S, allowed_updates=ALLOWED_UPDATES
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
                if updates:
                    for _ in range(NEXT_POLL_AFTER_TURNS):
                        await asyncio.sleep(0)
            if offset is not None:
                await self._confirm(offset)
        finally:
            stopping.cancel()

    async def _confirm(self, offset: int) -> None:
        """Tell Telegram the updates before `offset` are handled, so a restart does not get
        them again (their short replies, which the journal does not keep, would be repeated)."""
        confirming = self.application.bot.get_updates(
            offset=offset, timeout=0, limit=1, allowed_updates=ALLOWED_UPDATES
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
        message, sender = taken
        self._reply_soon(self._help_in_language(message, sender), update)

    async def _help_in_language(self, message: Message, sender: Sender) -> Message:
        language = await self._intake.language("telegram", sender)
        return await message.reply_text(self._texts.text(language, HELP_TEXT), do_quote=False)

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._take(update)

    async def _take(self, update: Update) -> Answer | None:
        """Queue the message's links and say at once what there is to say; by webhook, a
        queue out of reach is said with a 503 instead, and Telegram sends the update again."""
        taken = person_message(update)
        if taken is None:
            return None
        message, sender = taken
        sound = asks_for_sound(message)
        answer = await self._intake.take(
            texts_of(message),
            origin_of(message),
            self._budget_bytes,
            private=is_private(message),
            sender=sender,
            explicit=asks_for_video(message) or sound,
            want=Want.AUDIO if sound else Want.VIDEO,
        )
        if answer in _COME_BACK and self._webhook_url:
            return answer
        text = await self._intake.say_to(answer, "telegram", sender)
        if text is not None:
            self._reply_soon(message.reply_text(text, do_quote=not is_private(message)), update)
        return answer

    async def _on_press(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._take_press(update)

    async def _take_press(self, update: Update) -> Answer | None:
        """A press on "🎵 Sound" under a video, or on a /top clip's button: the press answered
        at once, then the clip's sound (or the clip) queued as a request of its own (the
        press's id), replying to the message that holds the button."""
        query = update.callback_query
        if query is None:
            return None
        with contextlib.suppress(TelegramError):
            await query.answer()
        data = query.data or ""
        want = Want.AUDIO if data.startswith(SOUND_PREFIX) else Want.VIDEO
        link = sound_link(data) if want is Want.AUDIO else again_link(data)
        message = query.message
        if link is None or message is None:
            return None
        user = query.from_user
        sender = Sender(user=user.id, chat=message.chat.id, language=user.language_code)
        origin = ButtonOrigin(
            chat_id=message.chat.id, message_id=message.message_id, query_id=query.id
        )
        answer = await self._intake.take(
            [link],
            origin,
            self._budget_bytes,
            private=True,
            sender=sender,
            explicit=True,
            want=want,
        )
        if answer in _COME_BACK and self._webhook_url:
            return answer
        text = await self._intake.say_to(answer, "telegram", sender)
        if text is not None:
            reply = self.application.bot.send_message(
                message.chat.id,
                text,
                reply_parameters=ReplyParameters(
                    message_id=message.message_id, allow_sending_without_reply=True
                ),
            )
            self._reply_soon(reply, update)
        return answer

    async def _on_settings(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """/settings: the chat's settings as buttons, for a group's admins (in a private chat,
        the person's own); anyone else gets one quiet line."""
        taken = person_message(update)
        store = self._chat_settings()
        if taken is None or store is None:
            return
        message, sender = taken
        chosen = await store.get(chat_key("telegram", message.chat_id))
        language = chosen.language or sender.language
        if not await self._may_change(message.chat_id, sender.user, is_private(message)):
            self._reply_soon(
                message.reply_text(self._texts.text(language, ADMINS_ONLY_TEXT), do_quote=True),
                update,
            )
            return
        text = await self._settings_text(message.chat_id, chosen, language, is_private(message))
        self._reply_soon(
            message.reply_text(
                text, reply_markup=self._settings_keyboard(chosen, language), do_quote=False
            ),
            update,
        )

    async def _settings_text(
        self, chat_id: int, chosen: ChatSettings, language: str | None, private: bool
    ) -> str:
        """The settings' heading, and a line when a choice needs a right the bot lacks."""
        text = self._texts.text(language, SETTINGS_TEXT)
        if private or chosen.original is not OriginalMessage.DELETE:
            return text
        bot = self.application.bot
        try:
            member = await bot.get_chat_member(chat_id, bot.id)
        except TelegramError as err:
            log.info("could not check the bot's rights (%r)", err)
            return text
        if getattr(member, "can_delete_messages", False):
            return text
        return f"{text}\n\n{self._texts.text(language, CANNOT_DELETE_TEXT)}"

    def _settings_keyboard(
        self, settings: ChatSettings, language: str | None
    ) -> InlineKeyboardMarkup:
        """One button per setting, showing its value; a press moves it to the next."""
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        self._texts.text(
                            language,
                            SETTING_BUTTON_TEXT,
                            label=self._texts.text(language, label),
                            value=self._texts.text(language, value),
                        ),
                        callback_data=f"{_SETTING}{name}",
                    )
                ]
                for name, label, value in shown("telegram", settings)
            ]
        )

    async def _on_setting_button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """A press on a /settings button: the next choice, saved and shown."""
        query = update.callback_query
        store = self._chat_settings()
        if query is None or store is None:
            return
        name = (query.data or "").removeprefix(_SETTING)
        message = query.message
        if name not in OFFERED["telegram"] or message is None:
            await query.answer()
            return
        private = message.chat.type == message.chat.PRIVATE
        key = chat_key("telegram", message.chat.id)
        before = await store.get(key)
        language = before.language or query.from_user.language_code
        if not await self._may_change(message.chat.id, query.from_user.id, private):
            await query.answer(self._texts.text(language, ADMINS_ONLY_TEXT))
            return
        changed = next_choice("telegram", before, name)
        await store.put(key, changed)
        if self._trending is not None:
            await self._trending.settings_saved(key, changed)
        language = changed.language or query.from_user.language_code
        text = await self._settings_text(message.chat.id, changed, language, private)
        await query.edit_message_text(text, reply_markup=self._settings_keyboard(changed, language))
        await query.answer(self._texts.text(language, SETTINGS_SAVED_TEXT))

    async def _on_top(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """/top: the chat's most reshared clips of the week, each with a button that sends it
        again (from the cache)."""
        taken = person_message(update)
        if taken is None or self._trending is None:
            return
        message, sender = taken
        chosen = await self._intake.settings_of("telegram", sender)
        language = chosen.language or sender.language
        clips = await self._trending.top("telegram", sender, chosen)
        if isinstance(clips, str):
            reply = message.reply_text(self._texts.text(language, clips), do_quote=False)
        else:
            buttons = [
                InlineKeyboardButton(f"▶️ {rank}", callback_data=data)
                for rank, clip in enumerate(clips, start=1)
                if (data := again_data(clip.clip_id)) is not None
            ]
            reply = message.reply_text(
                listing(clips, self._texts, language),
                reply_markup=InlineKeyboardMarkup([buttons]),
                do_quote=False,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        self._reply_soon(reply, update)

    async def _may_change(self, chat_id: int, user_id: int | str, private: bool) -> bool:
        """A private chat is the person's own; a group's settings are its admins'."""
        if private:
            return True
        try:
            member = await self.application.bot.get_chat_member(chat_id, int(user_id))
        except TelegramError as err:
            log.info("could not check a member's rights (%r): not allowed", err)
            return False
        return member.status in _ADMINS

    async def _on_inline_query(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        self._answer_soon(update)

    def _answer_soon(self, update: Update) -> None:
        """Work on an inline query beside polling: it waits out the person's typing first."""
        self.application.create_task(self._answer_inline(update), update=update)

    async def _answer_inline(self, update: Update) -> None:
        query = update.inline_query
        if query is None or self._inline is None:
            return
        offer = await self._inline.answer(
            "telegram",
            query.from_user.id,
            query.query,
            self._budget_bytes,
            new_clips=self._new_inline_clips,
        )
        if offer is InlineRefusal.SUPERSEDED:
            return  # a newer query of the same person is answered instead
        language = query.from_user.language_code
        results, personal, cache_s = self._results(offer, language)
        hint = offer.hint if isinstance(offer, InlineRefusal) else None
        hint = self._texts.text(language, hint) if hint else None
        try:
            await query.answer(
                results,
                cache_time=cache_s,
                is_personal=personal,
                button=InlineQueryResultsButton(text=hint, start_parameter=HINT_START)
                if hint
                else None,
            )
        except TelegramError as err:
            # Too late (the person typed on) or refused: nothing to repeat.
            log.info("inline answer not taken: %r", err)

    async def _on_chosen(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._take_chosen(update)

    async def _take_chosen(self, update: Update) -> Answer | None:
        """A person sent a placeholder: queue its clip, to be edited into the sent message."""
        chosen = update.chosen_inline_result
        if chosen is None or chosen.inline_message_id is None or self._inline is None:
            return None  # a clip sent by its file id: nothing left to do
        user = chosen.from_user.id
        origin = InlineOrigin(inline_message_id=chosen.inline_message_id, user_id=user)
        answer = await self._inline.chosen(
            chosen.query,
            origin,
            self._budget_bytes,
            Sender(user=user, chat=f"inline:{user}", language=chosen.from_user.language_code),
        )
        text = self._intake.say(answer, chosen.from_user.language_code)
        if answer in _COME_BACK and self._webhook_url:
            return answer
        if text is not None:
            self.application.create_task(self.replier.tell_inline(origin, text), update=update)
        return answer

    def _results(
        self, offer: InlineAnswer, language: str | None
    ) -> tuple[list[InlineQueryResult], bool, int]:
        """An offer as inline results (in the person's language), whether they are personal,
        and how long Telegram may keep them."""
        return _results(offer, functools.partial(self._texts.text, language))


def _results(
    offer: InlineAnswer, text: Callable[[str], str]
) -> tuple[list[InlineQueryResult], bool, int]:
    if isinstance(offer, InlineCached):
        info = offer.media.info
        title = f"@{info.author}" if info.author else text(N_("TikTok video"))
        video = InlineQueryResultCachedVideo(
            id=_result_id("v", offer.file_id),
            video_file_id=offer.file_id,
            title=title,
            description=info.description[:100] or None,
            caption=make_caption(info, limit=1024),
        )
        return [video], False, CACHED_RESULT_S
    if isinstance(offer, InlinePlaceholder):
        placeholder = InlineQueryResultArticle(
            id=_result_id("p", offer.link.url),
            title=text(N_("Send the video")),
            description=offer.link.original,
            input_message_content=InputTextMessageContent(
                f"{text(FETCHING_TEXT)}\n{offer.link.url}"
            ),
            # With a keyboard the sent message gets an inline_message_id, so it can be edited.
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton(text(N_("Open on TikTok")), url=offer.link.url)]]
            ),
        )
        return [placeholder], True, PLACEHOLDER_RESULT_S
    return [], True, PLACEHOLDER_RESULT_S


def _result_id(kind: str, value: str) -> str:
    """A result id (at most 64 bytes) that names what the result offers."""
    return kind + hashlib.sha256(value.encode()).hexdigest()[:40]


def _retry_delay(err: Exception, failures: int) -> float:
    """Telegram's own wait after a 429, else a doubling backoff."""
    if isinstance(err, RetryAfter):
        return retry_after_s(err)
    return min(POLL_RETRY_MAX_S, POLL_RETRY_FIRST_S * 2.0 ** (failures - 1))
