"""Discord adapter: discord.py interactions and messages in, core requests out, outcomes back.

Its face holds only what needs no discord.py (settings and the doctor's checks): the adapter
itself is `adapters.discord.app.DiscordAdapter`, imported where a Discord token is set, so a
process without one does not carry discord.py's memory.
"""

from adapters.discord.doctor import discord_checks
from adapters.discord.settings import DEFAULT_UPLOAD_BYTES, DiscordSettings

__all__ = ["DEFAULT_UPLOAD_BYTES", "DiscordSettings", "discord_checks"]
