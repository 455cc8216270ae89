"""The DNS boundary of the SSRF guard, for tests: names from a table, nothing from the network."""

from __future__ import annotations

from collections.abc import Mapping


class TableResolver:
    """Answers names from a table; other names do not resolve, as on a machine without DNS of
    its own (the stand-in proxy, like DOWNLOAD_PROXY there, resolves them)."""

    def __init__(self, table: Mapping[str, list[str]] | None = None) -> None:
        self._table = dict(table or {})
        self.asked: list[str] = []

    def addresses(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self._table:
            raise OSError(f"{host}: Name or service not known")
        return self._table[host]
