"""The Telegram half of `python -m bot doctor`: the token (getMe) and the webhook's state."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

from telegram import Bot, ChatMember, ChatMemberAdministrator, ChatMemberOwner
from telegram.error import InvalidToken, TelegramError

from adapters.telegram.request import AiohttpRequest
from adapters.telegram.settings import TelegramSettings
from bot.doctor import Check, error_text, fail, ok, one_line, skip, warn

DEFAULT_API_URL = "https://api.telegram.org"


async def telegram_checks(settings: TelegramSettings, timeout_s: float) -> list[Check]:
    """ "telegram": the token is good (getMe); "telegram webhook": what Telegram has registered,
    against what the bot will do with it at start."""
    token = settings.telegram_bot_token
    if token is None:
        return [skip("telegram", "not configured (no TELEGRAM_BOT_TOKEN)")]
    # PTB 22 warns on every RetryAfter unless opted in to its timedelta durations.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    root = settings.telegram_api_url.rstrip("/")
    via = "" if root == DEFAULT_API_URL else f" via {root}"
    bot = Bot(
        token.get_secret_value(),
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
        request=_request(timeout_s),
        get_updates_request=_request(timeout_s),
    )
    try:
        async with asyncio.timeout(timeout_s):
            try:
                await bot.initialize()  # getMe
            except InvalidToken as err:
                # Its message holds the token; the cause says what the server answered.
                answer = one_line(err.__cause__ or "")
                if "not found" in answer.lower():
                    return [
                        fail(
                            "telegram",
                            f"{root} answered 404: is TELEGRAM_API_URL the Bot API's root?",
                        )
                    ]
                return [
                    fail(
                        "telegram",
                        f"token refused ({answer or 'Unauthorized'}){via}: copy it again from "
                        "@BotFather (/token) into TELEGRAM_BOT_TOKEN",
                    )
                ]
            me = bot.bot
            found = [ok("telegram", f"@{me.username} (id {me.id}){via}")]
            found.append(await _webhook_check(bot, settings.telegram_webhook_url))
            found.append(await _storage_check(bot, settings.telegram_storage_chat_id))
            return found
    except TimeoutError:
        return [fail("telegram", f"no answer from {root} within {timeout_s:.0f} s")]
    except TelegramError as err:
        return [fail("telegram", f"{root} not reachable: {error_text(err)}")]
    finally:
        await bot.shutdown()


def _request(timeout_s: float) -> AiohttpRequest:
    """The client the bot itself uses (its certificates and proxy), so a check that passes here
    passes for the bot."""
    return AiohttpRequest(
        connections=4,
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        write_timeout=timeout_s,
        pool_timeout=timeout_s,
    )


async def _webhook_check(bot: Bot, wanted: str | None) -> Check:
    """With TELEGRAM_WEBHOOK_URL the receiver calls setWebhook at start; without it the bot
    polls, and deletes a webhook it finds first (deleteWebhook without drop_pending_updates)."""
    name = "telegram webhook"
    info = await bot.get_webhook_info()
    pending = (
        f"{info.pending_update_count} update{'s' if info.pending_update_count != 1 else ''} pending"
    )
    last_error = ""
    if info.last_error_message:
        when = info.last_error_date
        ago = ""
        if isinstance(when, dt.datetime):
            seconds = (dt.datetime.now(dt.UTC) - when).total_seconds()
            ago = f" {_ago(seconds)}"
        last_error = f"; last delivery failed{ago}: {one_line(info.last_error_message)}"
    if wanted:
        if not info.url:
            return ok(name, f"not set yet, the receiver sets it at start ({wanted}); {pending}")
        if info.url != wanted:
            return fail(
                name,
                f"Telegram posts updates to {info.url}, not to TELEGRAM_WEBHOOK_URL {wanted}: "
                "another deployment uses this token, or no receiver started since the URL "
                f"changed (a receiver sets it at start); {pending}",
            )
        if last_error:
            return warn(name, f"{info.url}; {pending}{last_error}")
        return ok(name, f"{info.url}; {pending}")
    if info.url:
        return ok(
            name,
            f"{info.url} is set, but TELEGRAM_WEBHOOK_URL is not: the bot deletes it at start "
            f"and polls (updates waiting are kept); {pending}",
        )
    return ok(name, f"none: the bot polls (getUpdates); {pending}")


async def _storage_check(bot: Bot, chat_id: int | None) -> Check:
    """Inline mode uploads new clips to TELEGRAM_STORAGE_CHAT_ID: the bot must be able to post
    there (a channel: as an administrator with "post messages")."""
    name = "telegram storage chat"
    if chat_id is None:
        return skip(
            name, "not set (no TELEGRAM_STORAGE_CHAT_ID): inline mode offers only clips sent before"
        )
    try:
        chat = await bot.get_chat(chat_id)
        member: ChatMember = await bot.get_chat_member(chat_id, bot.bot.id)
    except TelegramError as err:
        return fail(
            name,
            f"{chat_id} not usable ({error_text(err)}): add the bot to that channel as an "
            "administrator that may post",
        )
    title = f"{chat.title or chat_id} ({chat.type})"
    if chat.type == chat.CHANNEL:
        can_post = isinstance(member, ChatMemberOwner) or (
            isinstance(member, ChatMemberAdministrator) and bool(member.can_post_messages)
        )
        if not can_post:
            return fail(
                name,
                f"{title}: the bot is {member.status}, not an administrator that may post "
                "messages: give it that right",
            )
    elif member.status in (member.LEFT, member.BANNED, member.RESTRICTED):
        return fail(name, f"{title}: the bot is {member.status} there and cannot post")
    return ok(name, f"{title}: the bot may post (inline mode uploads new clips here)")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"
