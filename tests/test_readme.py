"""The README's promises that code can check."""

import re
from pathlib import Path

import discord

from adapters.discord import DiscordSettings
from adapters.telegram import TelegramSettings
from bot.settings import CoreSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_invite_link_asks_for_exactly_the_documented_permissions() -> None:
    needed = discord.Permissions(
        view_channel=True,
        send_messages=True,
        attach_files=True,
        embed_links=True,
        read_message_history=True,
        add_reactions=True,
    )
    assert f"permissions={needed.value}&" in README or f"permissions={needed.value}`" in README
    with_manage = discord.Permissions(
        needed.value | discord.Permissions(manage_messages=True).value
    )
    assert f"permissions={with_manage.value}`" in README


def test_readme_starts_with_the_two_commands() -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None
    run, test = block.group(1).strip().splitlines()
    assert run.endswith("python -m bot")
    assert ".[test]" in test
    assert "pytest" in test
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert test in ci


def test_every_setting_is_documented() -> None:
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    names = re.findall(r"^([A-Z_]+)=", example, re.M)
    assert "TELEGRAM_BOT_TOKEN" in names
    assert "DISCORD_BOT_TOKEN" in names
    for settings in (CoreSettings, TelegramSettings, DiscordSettings):
        for field in settings.model_fields:
            assert field.upper() in names, f"{field.upper()} is not in .env.example"
    for name in names:
        assert f"`{name}`" in README, name
