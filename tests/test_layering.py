"""The core never imports a platform library; only the composition root reaches the adapters."""

import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "bot"


def test_core_modules_load_without_telegram_discord_or_the_adapters() -> None:
    modules = sorted(
        ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE.rglob("*.py")
        if p.stem not in {"__init__", "app"}
    )
    assert "service" in modules
    assert "stores.sqlite_cache" in modules
    script = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('bot.' + m)\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in {'telegram', 'discord', 'adapters'})\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=CORE.parent
    )
    assert done.stdout.strip() == ""


def test_core_sources_name_no_platform_library() -> None:
    for path in CORE.rglob("*.py"):
        if path.name == "app.py":
            continue
        for line in path.read_text().splitlines():
            stripped = line.strip()
            assert not stripped.startswith(("import telegram", "from telegram")), path
            assert not stripped.startswith(("import discord", "from discord")), path
