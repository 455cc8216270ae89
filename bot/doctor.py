"""`python -m bot doctor`: checks a deployment and says, one line per check, what holds and how to
fix what does not (issue "When TikTok changes").

The checks of the core live here; the platforms' (tokens, webhook) come from the adapters and are
handed in by the composition root. Checks run at once, each bounded in time, and are reported in
a fixed order. A line never holds a secret: the report goes through the log's redaction.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import enum
import importlib.metadata
import os
import re
import shutil
import ssl
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg

from bot.cookies import CookiesFileError, check_cookies_file
from bot.engine import Engine
from bot.logs import REDACTED, secret_forms
from bot.model import Album, FetchError, Media
from bot.settings import CoreSettings

# Seconds one network check (the index, Redis, a proxy, a platform's API) may take.
NETWORK_TIMEOUT_S = 5.0
# Seconds ffmpeg and the impersonation check may take (the latter builds a YoutubeDL).
LOCAL_TIMEOUT_S = 20.0
# A canary may take the download's own timeout, and this much more to fit and clean up.
CANARY_EXTRA_S = 15.0
# Seconds a check that ran out of time gets to end once cancelled before it is left behind.
CANCEL_GRACE_S = 1.0
# Past this age a yt-dlp is likely behind TikTok's pages (they change every few weeks).
MAX_YTDLP_AGE_DAYS = 60
TUNNEL_TARGET = "www.tiktok.com:443"
# What a line may hold of an error message.
MAX_DETAIL_CHARS = 400


class Status(enum.Enum):
    """How a check came out; only FAIL makes the run fail."""

    OK = "ok"
    WARN = "warn"  # worth knowing, not a breakage (e.g. the package index is out of reach)
    SKIP = "skip"  # not configured, so not checked
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: what was checked, how it came out, and the detail or the fix."""

    name: str
    status: Status
    detail: str

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    def line(self) -> str:
        return f"{self.status.value:<4}  {self.name} {self.detail}"


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str) -> Check:
    return Check(name, Status.WARN, detail)


def skip(name: str, detail: str) -> Check:
    return Check(name, Status.SKIP, detail)


def fail(name: str, detail: str) -> Check:
    return Check(name, Status.FAIL, detail)


def one_line(text: object) -> str:
    """An error message as one line of at most MAX_DETAIL_CHARS."""
    lines = [part.strip() for part in str(text).splitlines() if part.strip()]
    first = lines[0] if lines else ""
    if len(first) > MAX_DETAIL_CHARS:
        first = first[: MAX_DETAIL_CHARS - 1] + "…"
    return first


def error_text(err: BaseException) -> str:
    """An exception's class and message on one line (the message may be empty)."""
    message = one_line(err)
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


class Redactor:
    """Takes every form of every secret out of a line (tokens, passwords in URLs, API keys)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for secret in secrets if secret for form in secret_forms(secret)}
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text


async def run_checks(
    settings: CoreSettings,
    *,
    budget_bytes: int,
    platforms: Mapping[str, Awaitable[list[Check]]] | None = None,
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every check, run at once, in a fixed order: the install (ffmpeg, yt-dlp, gallery-dl,
    impersonation), DATA_DIR, the `platforms` (name -> their checks, each bounded by
    NETWORK_TIMEOUT_S and a little), Redis, the proxies, the cookies file, the canaries.

    `on_check` gets each result as soon as it and all before it are in; `budget_bytes` is the
    upload budget the canaries fit their clips to.
    """
    network = NETWORK_TIMEOUT_S
    canary_s = settings.download_timeout_s + CANARY_EXTRA_S
    steps: list[tuple[str, Awaitable[list[Check]], float]] = [
        ("ffmpeg", _one(check_ffmpeg()), LOCAL_TIMEOUT_S),
        ("packages", check_packages(settings.package_index_url, network), network + 2),
        ("impersonation", _one(check_impersonation()), LOCAL_TIMEOUT_S),
        ("data dir", _one(check_data_dir(settings.data_dir)), LOCAL_TIMEOUT_S),
        *((name, checks, network + 2) for name, checks in (platforms or {}).items()),
        ("redis", _one(check_redis(settings.redis_url, network)), network + 2),
        (
            "proxy",
            check_proxies(settings.proxies, settings.download_verify_tls, network),
            network + 2,
        ),
        ("cookies", _one(check_cookies(settings.download_cookies_file)), LOCAL_TIMEOUT_S),
        ("canary", check_canaries(settings, budget_bytes), canary_s),
    ]
    running = [
        asyncio.ensure_future(_bounded(name, work, timeout)) for name, work, timeout in steps
    ]
    found: list[Check] = []
    for each in running:
        for check in await each:
            found.append(check)
            if on_check is not None:
                on_check(check)
    return found


async def _one(check: Awaitable[Check]) -> list[Check]:
    return [await check]


async def _bounded(name: str, work: Awaitable[list[Check]], timeout_s: float) -> list[Check]:
    """The checks' results, or one FAIL line when they take longer than `timeout_s` or raise.

    A check stuck past its time (a thread in a socket read cannot be interrupted) is cancelled
    and left behind after CANCEL_GRACE_S; the composition root then exits without waiting.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        task.add_done_callback(_forget)
        await asyncio.wait({task}, timeout=CANCEL_GRACE_S)
        return [fail(name, f"no result within {timeout_s:.0f} s")]
    try:
        return task.result()
    except Exception as err:
        return [fail(name, f"could not be checked: {error_text(err)}")]


def _forget(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned check's outcome, so asyncio does not report it."""
    if not task.cancelled():
        task.exception()


# -- ffmpeg ---------------------------------------------------------------------------------

_LIBX264 = re.compile(r"^\s*V\S*\s+libx264\s", re.MULTILINE)


async def check_ffmpeg() -> Check:
    """ffmpeg runs and has the libx264 encoder (every delivered video is H.264)."""
    name = "ffmpeg"
    chosen = " (set by IMAGEIO_FFMPEG_EXE)" if os.environ.get("IMAGEIO_FFMPEG_EXE") else ""
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        return fail(name, f"not found ({one_line(err)}): {_fix_ffmpeg(chosen)}")
    encoders = ""
    try:
        code, version = await _run(exe, "-hide_banner", "-version")
        if code == 0:
            code, encoders = await _run(exe, "-hide_banner", "-encoders")
    except OSError as err:
        return fail(
            name, f"{exe}{chosen} does not run ({err.strerror or err}): {_fix_ffmpeg(chosen)}"
        )
    if code != 0:
        return fail(name, f"{exe}{chosen} exited with status {code}: {_fix_ffmpeg(chosen)}")
    if not _LIBX264.search(encoders):
        return fail(
            name,
            f"{exe}{chosen} has no libx264 encoder, so videos cannot be made H.264: "
            + _fix_ffmpeg(chosen),
        )
    words = version.split()
    number = words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else "?"
    return ok(name, f"{number} with libx264 ({exe}{chosen})")


def _fix_ffmpeg(chosen: str) -> str:
    if chosen:
        return "unset IMAGEIO_FFMPEG_EXE to use the bundled one"
    return f"run {_pip()} install --force-reinstall imageio-ffmpeg (its wheel ships ffmpeg)"


async def _run(*argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode or 0, out.decode(errors="replace")


# -- yt-dlp and gallery-dl --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _IndexEntry:
    newest: str
    uploaded: dict[str, dt.date]


async def check_packages(index_url: str, timeout_s: float) -> list[Check]:
    """yt-dlp and gallery-dl: installed versions, their age, and whether the index has newer."""
    packages = ("yt-dlp", "gallery-dl")
    async with httpx.AsyncClient(
        timeout=timeout_s, trust_env=False, follow_redirects=True
    ) as client:
        entries = await asyncio.gather(
            *(_index_entry(client, index_url, package) for package in packages)
        )
    today = dt.datetime.now(dt.UTC).date()
    return [
        _package_check(package, entry, _where(index_url), today)
        for package, entry in zip(packages, entries, strict=True)
    ]


async def _index_entry(client: httpx.AsyncClient, index_url: str, name: str) -> _IndexEntry | str:
    """What the index (PyPI's JSON API) says of a package, or why it could not be asked."""
    url = f"{index_url.rstrip('/')}/{name}/json"
    try:
        response = await client.get(url)
        response.raise_for_status()
        data = response.json()
        uploaded: dict[str, dt.date] = {}
        for version, files in (data.get("releases") or {}).items():
            times = [f["upload_time_iso_8601"] for f in files if f.get("upload_time_iso_8601")]
            if times:
                uploaded[version] = dt.datetime.fromisoformat(min(times)).date()
        return _IndexEntry(newest=str(data["info"]["version"]), uploaded=uploaded)
    except httpx.HTTPStatusError as err:
        return f"it answered {err.response.status_code}"
    except httpx.HTTPError as err:
        return error_text(err)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return f"not a JSON API answer ({error_text(err)})"


def _package_check(name: str, entry: _IndexEntry | str, where: str, today: dt.date) -> Check:
    update = f"run {_update_command()} and restart"
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return fail(name, f"is not installed: {update}")
    released = _date_of(installed) if name == "yt-dlp" else None
    if released is None and isinstance(entry, _IndexEntry):
        released = entry.uploaded.get(installed)
    age_days = (today - released).days if released is not None else None
    age = f" ({age_days} days old)" if age_days is not None else ""
    if isinstance(entry, str):
        unreachable = f"the index {where} is not reachable ({entry})"
        if name == "yt-dlp" and age_days is not None and age_days > MAX_YTDLP_AGE_DAYS:
            return fail(
                name,
                f"{installed}{age}, and {unreachable}: past {MAX_YTDLP_AGE_DAYS} days yt-dlp "
                f"is likely behind TikTok's pages: {update}",
            )
        return warn(name, f"{installed}{age}; {unreachable}, so not compared with the newest")
    if _version_key(entry.newest) > _version_key(installed):
        return fail(name, f"{installed}{age}; {entry.newest} is out: {update}")
    return ok(name, f"{installed}{age}, the newest on {where}")


def _date_of(version: str) -> dt.date | None:
    """yt-dlp's versions are its release dates: YYYY.MM.DD[.N]."""
    match = re.match(r"(\d{4})\.(\d{1,2})\.(\d{1,2})", version)
    if match is None:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def _version_key(version: str) -> tuple[int, ...]:
    """The leading numeric parts of a version ("2026.11.23.1" -> (2026, 11, 23, 1))."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    return tuple(parts)


def _update_command() -> str:
    """The command that updates the fetchers in this installation."""
    return f"{_pip()} install -U 'yt-dlp[default,curl-cffi]' gallery-dl"


def _pip() -> Path:
    """This installation's pip (relative to the working directory when inside it)."""
    pip = Path(sys.executable).parent / "pip"
    with contextlib.suppress(ValueError):
        pip = pip.relative_to(Path.cwd())
    return pip


def _where(url: str) -> str:
    """A URL's host (and port), for a line: never its credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


# -- impersonation ------------------------------------------------------------------------------


async def check_impersonation() -> Check:
    """curl_cffi is there, so yt-dlp can fetch TikTok's pages looking like Chrome."""
    name = "impersonation"
    # Imported on the loop's thread, not in the worker thread below: the canaries' engine may
    # import yt-dlp at the same time, and a second importer finds it half-initialised. Not at
    # the top: a bot whose yt-dlp runs in bot.download_process does not carry it.
    import yt_dlp  # noqa: F401

    targets = await asyncio.to_thread(_impersonate_targets)
    fix = "run " + _update_command().replace(" gallery-dl", "")
    if not targets:
        return fail(
            name,
            "yt-dlp cannot impersonate a browser (curl_cffi is missing), and TikTok refuses "
            f"requests that do not look like one more often: {fix}",
        )
    if not any(target.startswith("chrome") for target in targets):
        return fail(name, f"no Chrome target among {', '.join(targets[:5])}: {fix}")
    try:
        curl = f" (curl_cffi {importlib.metadata.version('curl_cffi')})"
    except importlib.metadata.PackageNotFoundError:
        curl = ""
    return ok(name, f"TikTok pages are fetched impersonating {targets[0]}{curl}")


def _impersonate_targets() -> list[str]:
    """yt-dlp's impersonation targets, best first: what a page request with `impersonate=True`
    (TikTok's) resolves to comes first."""
    import yt_dlp

    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True}) as ydl:
        return [str(target) for target, _ in ydl._get_available_impersonate_targets()]


# -- DATA_DIR ------------------------------------------------------------------------------------


async def check_data_dir(data_dir: Path) -> Check:
    """DATA_DIR exists (made as the bot makes it: mode 0700) and takes a file."""
    return await asyncio.to_thread(_data_dir_check, data_dir)


def _data_dir_check(data_dir: Path) -> Check:
    name = "data dir"
    path = data_dir.absolute()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path, prefix=".doctor-")
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        return fail(
            name,
            f"{path} is not writable ({err.strerror or err}): the bot keeps its journal, cache "
            "and job files there; make it a directory of the bot's user with mode 700",
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return warn(name, f"{path} is writable, but mode {mode:o} lets others in: chmod 700 {path}")
    return ok(name, f"{path} is writable (mode {mode:o})")


# -- Redis ---------------------------------------------------------------------------------------


async def check_redis(url: str | None, timeout_s: float) -> Check:
    """In the distributed mode, Redis answers PING."""
    name = "redis"
    if not url:
        return skip(name, "not used (no REDIS_URL: the embedded mode)")
    # Imported here: a process without REDIS_URL does not carry redis' memory.
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError

    shown = _without_password(url)
    try:
        client = Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as err:
        return fail(name, f"REDIS_URL is not a Redis URL ({one_line(err)})")
    try:
        async with asyncio.timeout(timeout_s):
            await client.ping()
            info = await client.info("server")
    except (RedisError, OSError, TimeoutError) as err:
        return fail(name, f"{shown} not reachable: {error_text(err)}")
    finally:
        await client.aclose()
    return ok(name, f"{shown} answers PING (Redis {info.get('redis_version', '?')})")


def _with_scheme(url: str) -> str:
    return url if "://" in url else f"http://{url}"


def _without_password(url: str) -> str:
    """The URL with its password left out (the user name stays)."""
    parts = urllib.parse.urlsplit(_with_scheme(url))
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


# -- proxies --------------------------------------------------------------------------------------


async def check_proxies(proxies: Sequence[str], verify_tls: bool, timeout_s: float) -> list[Check]:
    """Each DOWNLOAD_PROXY opens a tunnel to TikTok."""
    if not proxies:
        return [skip("proxy", "none (no DOWNLOAD_PROXY): fetches go out directly")]
    return list(
        await asyncio.gather(*(check_proxy(proxy, verify_tls, timeout_s) for proxy in proxies))
    )


async def check_proxy(proxy: str, verify_tls: bool, timeout_s: float) -> Check:
    """TCP to the proxy, then `CONNECT www.tiktok.com:443`: a 2xx answer opens the tunnel."""
    name = "proxy"
    parts = urllib.parse.urlsplit(_with_scheme(proxy))
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme, 1080)
    except ValueError:
        return fail(name, f"{_where(proxy)}: DOWNLOAD_PROXY has no valid port")
    host = parts.hostname or ""
    shown = f"{scheme}://{host}:{port}"
    context: ssl.SSLContext | None = None
    if scheme == "https":
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
            if scheme.startswith("socks"):
                return ok(name, f"{shown} takes connections (SOCKS: the tunnel is not tried)")
            writer.write(_connect_request(parts.username, parts.password))
            await writer.drain()
            status_line = (await reader.readline()).decode("latin-1").strip()
    except TimeoutError:
        return fail(name, f"{shown} gave no answer within {timeout_s:.0f} s")
    except OSError as err:
        return fail(name, f"{shown} not reachable: {_os_error(err)}")
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
    took_ms = (time.monotonic() - started) * 1000
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isdigit():
        return fail(name, f"{shown} is not an HTTP proxy (it answered {status_line[:60]!r})")
    if code.startswith("2"):
        return ok(name, f"{shown} opens a tunnel to {TUNNEL_TARGET} ({rest}, {took_ms:.0f} ms)")
    if code == "407":
        wanted = "refused the user and password" if parts.username else "wants a user and password"
        return fail(name, f"{shown} {wanted} (407): DOWNLOAD_PROXY=http://user:password@host:port")
    return fail(name, f"{shown} refused a tunnel to {TUNNEL_TARGET}: {rest}")


def _os_error(err: OSError) -> str:
    """ "Connection refused" rather than asyncio's "Connect call failed ('127.0.0.1', 9)"."""
    if err.errno:
        return os.strerror(err.errno)
    return error_text(err)


def _connect_request(user: str | None, password: str | None) -> bytes:
    head = f"CONNECT {TUNNEL_TARGET} HTTP/1.1\r\nHost: {TUNNEL_TARGET}\r\n"
    if user is not None:
        pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
        head += f"Proxy-Authorization: Basic {base64.b64encode(pair.encode()).decode()}\r\n"
    return (head + "\r\n").encode("latin-1")


# -- cookies --------------------------------------------------------------------------------------


async def check_cookies(path: Path | None) -> Check:
    """DOWNLOAD_COOKIES_FILE, when set, is a cookies.txt yt-dlp reads and only its owner can."""
    name = "cookies"
    if path is None:
        return skip(name, "none (no DOWNLOAD_COOKIES_FILE)")
    try:
        found = await asyncio.to_thread(check_cookies_file, path)
    except CookiesFileError as err:
        return fail(name, one_line(err).removeprefix("cookies file "))
    domains = ", ".join(found.domains)
    held = f"{path}: {found.count} cookie{'s' if found.count != 1 else ''} for {domains}"
    if not any(_in_domain(domain, "tiktok.com") for domain in found.domains):
        return warn(name, f"{held}; none for tiktok.com, so they do not help with TikTok")
    return ok(name, held)


def _in_domain(cookie_domain: str, domain: str) -> bool:
    host = cookie_domain.lstrip(".")
    return host == domain or host.endswith("." + domain)


# -- canaries -------------------------------------------------------------------------------------


async def check_canaries(settings: CoreSettings, budget_bytes: int) -> list[Check]:
    """Each CANARY_URL fetched end to end (resolve, download, make playable, fit), nothing sent.

    The engine is the bot's own, in the embedded mode whatever REDIS_URL says (a canary needs no
    shared state, and its failures must not count in the bot's breakage watch in Redis), and
    without COBALT_API_URL: a canary proves the first path (yt-dlp, gallery-dl) works.
    """
    name = "canary"
    if not settings.canary_urls:
        return [skip(name, "none (CANARY_URLS is empty)")]
    try:
        engine = Engine(settings.model_copy(update={"redis_url": None, "cobalt_api_url": None}))
    except (ValueError, RuntimeError) as err:
        return [fail(name, f"the bot's engine could not be built: {one_line(err)}")]
    try:
        return list(
            await asyncio.gather(
                *(_canary(engine, url, budget_bytes) for url in settings.canary_urls)
            )
        )
    finally:
        await engine.stop()


async def _canary(engine: Engine, url: str, budget_bytes: int) -> Check:
    name = "canary"
    links = engine.sites.find(url)
    if not links:
        sites = ", ".join(engine.sites.names) or "none"
        return fail(name, f"{url}: not a link the bot takes (ALLOWED_SITES: {sites})")
    started = time.monotonic()
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="reshare-doctor-"))
    try:
        link = await engine.resolver.resolve(links[0])
        found = await engine.pipeline.prepare(link, budget_bytes, workdir)
        what = _describe(found)
    except FetchError as err:
        took = time.monotonic() - started
        detail = one_line(err.detail) or err.reason.message
        return fail(name, f"{url}: {err.reason.name} after {took:.1f} s: {detail}")
    except Exception as err:
        took = time.monotonic() - started
        return fail(name, f"{url}: failed after {took:.1f} s: {error_text(err)}")
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)
    took = time.monotonic() - started
    return ok(name, f"{url}: {what} in {took:.1f} s")


def _describe(found: Media | Album) -> str:
    if isinstance(found, Media):
        return (
            f"video {found.width}x{found.height} {found.duration:.1f} s, "
            f"{found.size / 1_000_000:.1f} MB"
        )
    sound = " + music" if found.audio is not None else ", no music"
    count = len(found.images)
    return f"photo post: {count} image{'s' if count != 1 else ''}{sound}"
