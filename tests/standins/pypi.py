"""A package index stand-in: PyPI's JSON API (``GET /pypi/<name>/json``) on 127.0.0.1.

    async with FakePyPI() as index:
        index.add_release("yt-dlp", "2026.11.23", uploaded="2026-11-23T20:15:02Z")
        # PACKAGE_INDEX_URL=index.url

Answers as PyPI does, with the fields `doctor` reads: ``info.version`` (the newest release that
is not a pre-release or yanked) and ``releases`` (each version's files with
``upload_time_iso_8601``); 404 ``{"message": "Not Found"}`` for a package it does not list.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standins.lifecycle import StandIn, listen

_PRE_RELEASE = re.compile(r"(a|b|rc|dev)\d*", re.IGNORECASE)


@dataclass
class _Release:
    version: str
    uploaded: dt.datetime
    yanked: bool = False


@dataclass
class _Project:
    name: str
    releases: list[_Release] = field(default_factory=list)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("rc")[0]))


class FakePyPI(StandIn):
    """PyPI's JSON API for the projects a test adds; ``requests`` lists the paths asked for."""

    def __init__(self) -> None:
        self._projects: dict[str, _Project] = {}
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self._root: str | None = None

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakePyPI is already running")
        app = web.Application()
        app.router.add_get("/pypi/{name}/json", self._project_json)
        self._runner, port = await listen(app, shutdown_timeout=1.0)
        self._root = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def url(self) -> str:
        """What PACKAGE_INDEX_URL would be (as ``https://pypi.org/pypi``)."""
        if self._root is None:
            raise RuntimeError("FakePyPI is not started")
        return f"{self._root}/pypi"

    def add_release(
        self, name: str, version: str, *, uploaded: str | dt.datetime, yanked: bool = False
    ) -> None:
        """List ``version`` of ``name``, its files uploaded at ``uploaded`` (ISO 8601 or a
        datetime; UTC when naive)."""
        when = dt.datetime.fromisoformat(uploaded) if isinstance(uploaded, str) else uploaded
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        project = self._projects.setdefault(_normalise(name), _Project(name))
        project.releases.append(_Release(version, when, yanked))

    async def _project_json(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        project = self._projects.get(_normalise(request.match_info["name"]))
        if project is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(_project_document(project))


def _normalise(name: str) -> str:
    """PEP 503: PyPI finds ``yt_dlp`` and ``YT-DLP`` as ``yt-dlp``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_document(project: _Project) -> dict[str, Any]:
    final = [
        r
        for r in project.releases
        if not r.yanked and not _PRE_RELEASE.search(r.version.split(".")[-1])
    ]
    newest = max(final or project.releases, key=lambda r: _version_key(r.version))
    releases: dict[str, list[dict[str, Any]]] = {}
    for release in project.releases:
        stamp = release.uploaded.astimezone(dt.UTC)
        filename = f"{project.name.replace('-', '_')}-{release.version}-py3-none-any.whl"
        releases.setdefault(release.version, []).append(
            {
                "filename": filename,
                "packagetype": "bdist_wheel",
                "upload_time": stamp.strftime("%Y-%m-%dT%H:%M:%S"),
                "upload_time_iso_8601": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "yanked": release.yanked,
            }
        )
    return {
        "info": {
            "name": project.name,
            "version": newest.version,
            "project_url": f"https://pypi.org/project/{project.name}/",
        },
        "releases": releases,
        "urls": releases[newest.version],
    }
