"""RedactingFormatter: a token never survives formatting, in any form a library writes it."""

from __future__ import annotations

import logging
from urllib.parse import quote

from bot.logs import REDACTED, RedactingFormatter

TELEGRAM = "123456789:AAH-secret_part-of+the/token"
DISCORD = "MTIzNDU2Nzg5MDEy.GaBcDe.secret-hmac_part+x/y"


def formatted(message: str, *args: object, exc: BaseException | None = None) -> str:
    formatter = RedactingFormatter([TELEGRAM, DISCORD, ""], "%(name)s: %(message)s")
    record = logging.LogRecord("httpx", logging.DEBUG, __file__, 1, message, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    return formatter.format(record)


def test_each_form_of_each_token_is_redacted() -> None:
    line = formatted(
        "POST %s %s %s %s %s",
        f"http://127.0.0.1:1/bot{TELEGRAM}/getUpdates",
        f"https://api.example/bot{quote(TELEGRAM, safe='')}/sendVideo",
        f"Authorization: Bot {DISCORD}",
        quote(DISCORD, safe=""),
        "secret half alone: AAH-secret_part-of+the/token",
    )
    for secret in (TELEGRAM, DISCORD, "AAH-secret_part", "secret-hmac_part"):
        assert secret not in line
    assert "%2F" not in line  # nothing of the encoded forms is left either
    assert line.count(REDACTED) == 5


def test_tracebacks_are_redacted_too() -> None:
    try:
        raise RuntimeError(f"failed: https://x/bot{TELEGRAM}/getMe")
    except RuntimeError as err:
        line = formatted("request failed", exc=err)
    assert "Traceback" in line
    assert TELEGRAM not in line
    assert "AAH-secret" not in line
