"""Discord adapter: discord.py interactions and messages in, core requests out, outcomes back."""

from adapters.discord.app import DiscordAdapter
from adapters.discord.doctor import DEFAULT_UPLOAD_BYTES, discord_checks
from adapters.discord.settings import DiscordSettings

__all__ = ["DEFAULT_UPLOAD_BYTES", "DiscordAdapter", "DiscordSettings", "discord_checks"]
