"""Telegram adapter: python-telegram-bot updates in, core requests out, core outcomes back."""

from adapters.telegram.app import TelegramAdapter
from adapters.telegram.doctor import telegram_checks
from adapters.telegram.settings import TelegramSettings

__all__ = ["TelegramAdapter", "TelegramSettings", "telegram_checks"]
