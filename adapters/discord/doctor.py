"""The Discord half of `python -m bot doctor`: the token (GET /users/@me)."""

from __future__ import annotations

import asyncio

from adapters.discord.settings import DiscordSettings
from bot.doctor import Check, error_text, fail, ok, one_line, skip

DEFAULT_API_URL = "https://discord.com/api/v10"


async def discord_checks(settings: DiscordSettings, timeout_s: float) -> list[Check]:
    """ "discord": the token is good, and whose it is."""
    name = "discord"
    token = settings.discord_bot_token
    if token is None:
        return [skip(name, "not configured (no DISCORD_BOT_TOKEN)")]
    # Imported here: a process without a Discord token does not carry discord.py's memory.
    import aiohttp
    import discord

    root = settings.discord_api_url.rstrip("/")
    via = "" if root == DEFAULT_API_URL else f" via {root}"
    # discord.py builds every REST URL from this class attribute (DESIGN.md section 7).
    saved = discord.http.Route.BASE
    discord.http.Route.BASE = root
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(timeout_s):
            user = await http.static_login(token.get_secret_value())
    except discord.LoginFailure:
        return [
            fail(
                name,
                f"token refused (401 Unauthorized){via}: copy it again from the Developer "
                "Portal (Bot > Reset Token) into DISCORD_BOT_TOKEN",
            )
        ]
    except discord.HTTPException as err:
        return [fail(name, f"{root} answered {err.status}: {one_line(err.text) or err.code}")]
    except TimeoutError:
        return [fail(name, f"no answer from {root} within {timeout_s:.0f} s")]
    except (aiohttp.ClientError, OSError) as err:
        return [fail(name, f"{root} not reachable: {error_text(err)}")]
    finally:
        await http.close()
        discord.http.Route.BASE = saved
    tag = user.get("discriminator") or "0"
    shown = f"@{user['username']}" if tag == "0" else f"{user['username']}#{tag}"
    return [ok(name, f"{shown} (id {user['id']}){via}")]
