"""Discord adapter: discord.py interactions and messages in, core requests out, outcomes back."""

from adapters.discord.app import DiscordAdapter
from adapters.discord.settings import DiscordSettings

__all__ = ["DiscordAdapter", "DiscordSettings"]
