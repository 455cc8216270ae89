"""The bot's ways in past TikTok's refusals, end to end: real yt-dlp and gallery-dl through the
TikTok stand-in's proxies, with a cookies file, rotating proxies, and the kind of each failure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import imageio_ffmpeg
import pytest

from bot.cookies import CookiesFileError
from bot.download import YtDlpDownloader
from bot.links import Link, parse_link
from bot.model import Album, Download, FailureKind, FetchError, Reason
from bot.netguard import HostGuard
from bot.proxies import ProxyPool
from bot.resolve import HttpxLinkResolver
from bot.slideshow import GalleryDlSlideshows
from tests.standins.clips import Clip, make_image, make_music
from tests.standins.dns import TableResolver
from tests.standins.tiktok import Fault, TikTokStandIn

# yt-dlp drops a failed media response unclosed; see tests/test_tiktok_faults.py.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
    pytest.mark.usefixtures("collect_leaked_sockets"),
]

POST = "7450000000000000001"
PHOTO = "7450000000000000002"
SESSION = "0123456789abcdef-session"


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    folder = tmp_path_factory.mktemp("slides")
    return tuple(
        make_image(folder / f"slide{n}.jpeg", width=360, height=480, seed=n) for n in range(2)
    )


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_music(tmp_path_factory.mktemp("music") / "music.mp3", duration=2.0)


@pytest.fixture
async def tiktok(
    h264_clip: Clip, slides: tuple[Path, ...], music: Path
) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer")
        tt.add_photo_post(PHOTO, slides, music, author="painter")
        yield tt


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cookies_file(path: Path, *cookies: tuple[str, str], mode: int = 0o600) -> Path:
    """A cookies.txt with .tiktok.com cookies (name, value), as a browser extension exports."""
    rows = "".join(
        f".tiktok.com\tTRUE\t/\tTRUE\t2147483647\t{name}\t{value}\n" for name, value in cookies
    )
    path.write_text(f"# Netscape HTTP Cookie File\n{rows}")
    path.chmod(mode)
    return path


def downloader(pool: ProxyPool, cookies: Path | None = None) -> YtDlpDownloader:
    return YtDlpDownloader(
        proxies=pool,
        verify_tls=False,
        timeout_s=20,
        ffmpeg_path=imageio_ffmpeg.get_ffmpeg_exe(),
        threads=1,
        max_duration_s=600,
        extractors=("TikTok",),
        guard=HostGuard(TableResolver()),
        retry_delay_s=0.01,
        cookies=cookies,
    )


def slideshows(pool: ProxyPool, cookies: Path | None = None) -> GalleryDlSlideshows:
    return GalleryDlSlideshows(
        proxies=pool, verify_tls=False, timeout_s=30, max_bytes=50_000_000, cookies=cookies
    )


def video_link(post: str = POST) -> Link:
    link = parse_link(f"https://www.tiktok.com/@dancer/video/{post}")
    assert link is not None
    return link


def photo_link() -> Link:
    link = parse_link(f"https://www.tiktok.com/@painter/photo/{PHOTO}")
    assert link is not None
    return link


async def fetch(ytdlp: YtDlpDownloader, workdir: Path, post: str = POST) -> Download:
    workdir.mkdir(mode=0o700, parents=True)
    return await ytdlp.fetch(video_link(post), workdir, 50_000_000)


async def fetch_all(
    pool: ProxyPool, tmp_path: Path, runs: int = 1, cookies: Path | None = None
) -> list[Download | FetchError]:
    """`runs` fetches of POST by one downloader: the files, or the errors."""
    ytdlp = downloader(pool, cookies)
    results: list[Download | FetchError] = []
    try:
        for run in range(runs):
            try:
                results.append(await fetch(ytdlp, tmp_path / f"job{run}"))
            except FetchError as err:
                results.append(err)
    finally:
        ytdlp.close()
    return results


async def fetch_error(pool: ProxyPool, tmp_path: Path, cookies: Path | None = None) -> FetchError:
    [result] = await fetch_all(pool, tmp_path, cookies=cookies)
    assert isinstance(result, FetchError), "the fetch should have failed"
    return result


def page_proxies(tt: TikTokStandIn) -> list[str | None]:
    """Through which proxy each post page was asked for, in order."""
    return [r.proxy for r in tt.requests if r.host == TikTokStandIn.WEB_HOST]


# -- the pool --------------------------------------------------------------------------------


def test_the_pool_rests_a_proxy_after_failures_in_a_row() -> None:
    clock = Clock()
    pool = ProxyPool(
        ["http://a:1", "http://b:1", "http://c:1"], fail_limit=2, rest_s=10, clock=clock
    )
    pool.failed("http://a:1")
    pool.worked("http://a:1")
    pool.failed("http://a:1")
    assert pool.order() == ["http://a:1", "http://b:1", "http://c:1"]
    pool.failed("http://a:1")
    clock.now += 1
    pool.failed("http://b:1")
    pool.failed("http://b:1")
    # Resting ones last, the one whose rest ends soonest first.
    assert pool.order() == ["http://c:1", "http://a:1", "http://b:1"]
    clock.now += 9.5
    assert pool.order() == ["http://a:1", "http://c:1", "http://b:1"]
    # Once rested, one more failure sends it back.
    pool.failed("http://a:1")
    assert pool.resting("http://a:1")


def test_an_empty_pool_means_direct_and_unknown_proxies_are_ignored() -> None:
    pool = ProxyPool([])
    assert not pool
    assert pool.order() == []
    pool.failed("http://nowhere:1")
    pool.worked("http://nowhere:1")
    assert pool.order() == []
    assert ProxyPool(["http://a:1", "http://a:1"]).order() == ["http://a:1"]


# -- cookies ---------------------------------------------------------------------------------


async def test_a_cookies_file_opens_a_login_wall(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    tiktok.require_cookie(POST, "sessionid", SESSION)
    pool = ProxyPool([tiktok.proxy_url])
    jar = cookies_file(tmp_path / "cookies.txt", ("sessionid", SESSION))

    refused = await fetch_error(pool, tmp_path / "without")
    [download] = await fetch_all(pool, tmp_path / "with", cookies=jar)

    assert (refused.reason, refused.kind) == (Reason.LOGIN_REQUIRED, FailureKind.LOGIN_WALL)
    assert isinstance(download, Download)
    assert download.path.read_bytes() == h264_clip.path.read_bytes()
    assert download.info.author == "dancer"


async def test_media_behind_a_cookie_is_refused_without_it_and_sent_with_it(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    tiktok.require_cookie(POST, "msToken", "media-token", on="media")
    pool = ProxyPool([tiktok.proxy_url])
    wrong = cookies_file(tmp_path / "wrong.txt", ("msToken", "stale"))
    right = cookies_file(tmp_path / "right.txt", ("msToken", "media-token"))

    refused = await fetch_error(pool, tmp_path / "wrong", cookies=wrong)
    [download] = await fetch_all(pool, tmp_path / "right", cookies=right)

    assert (refused.reason, refused.kind) == (Reason.BLOCKED, FailureKind.BLOCKED_IP)
    assert isinstance(download, Download)
    assert download.path.read_bytes() == h264_clip.path.read_bytes()
    [*_, media] = [r for r in tiktok.requests if r.host == TikTokStandIn.CDN_HOST]
    assert "msToken=media-token" in media.headers["Cookie"]


async def test_the_cookies_file_is_never_written(tiktok: TikTokStandIn, tmp_path: Path) -> None:
    jar = cookies_file(tmp_path / "cookies.txt", ("sessionid", SESSION), ("lang", "en"))
    before = (jar.read_bytes(), jar.stat().st_mtime_ns, oct(jar.stat().st_mode))
    pool = ProxyPool([tiktok.proxy_url])

    # yt-dlp: the page sets tt_chain_token into the jar twice over; then every YoutubeDL closes.
    results = await fetch_all(pool, tmp_path / "ytdlp", runs=2, cookies=jar)
    # gallery-dl: its session's cookies, too, would be saved into a --cookies file by default.
    workdir = tmp_path / "gallery"
    workdir.mkdir()
    album = await slideshows(pool, jar).fetch(photo_link(), workdir)

    assert all(isinstance(result, Download) for result in results)
    assert len(album.images) == 2
    assert (jar.read_bytes(), jar.stat().st_mtime_ns, oct(jar.stat().st_mode)) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["cookies.txt"]


@pytest.mark.parametrize(
    ("mode", "text", "why"),
    [
        pytest.param(0o644, None, "is readable by other users: chmod 600 it", id="mode_644"),
        pytest.param(
            0o600, "sessionid=abc; lang=en\n", "is not a Netscape cookies.txt", id="header"
        ),
        pytest.param(0o600, "# Netscape HTTP Cookie File\n", "holds no cookies", id="empty"),
    ],
)
def test_a_refused_cookies_file_stops_the_downloaders_with_one_line(
    tmp_path: Path, mode: int, text: str | None, why: str
) -> None:
    jar = cookies_file(tmp_path / "cookies.txt", ("sessionid", SESSION), mode=mode)
    if text is not None:
        jar.write_text(text)
    with pytest.raises(CookiesFileError) as caught:
        downloader(ProxyPool([]), jar)
    message = str(caught.value)
    assert why in message
    assert "\n" not in message
    assert SESSION not in message


# -- proxies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.BLOCKED_IP, Fault.CHALLENGE])
async def test_a_refused_proxy_hands_the_job_to_the_next(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path, fault: Fault
) -> None:
    first, second = tiktok.proxy_url, tiktok.add_proxy()
    tiktok.block_proxy(first, fault)
    pool = ProxyPool([first, second], fail_limit=2, rest_s=300, clock=Clock())

    results = await fetch_all(pool, tmp_path, runs=3)

    for result in results:
        assert isinstance(result, Download)
        assert result.path.read_bytes() == h264_clip.path.read_bytes()
    # Two jobs tried the first proxy and moved on; then it rests and the third goes straight
    # to the second. Nothing was retried as transient: one page per proxy per job.
    assert page_proxies(tiktok) == [first, second, first, second, second]
    assert {r.proxy for r in tiktok.requests if r.host == TikTokStandIn.CDN_HOST} == {second}
    assert pool.resting(first)
    assert pool.order() == [second, first]


async def test_a_proxy_that_rested_is_tried_again_and_forgiven_when_it_works(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    first, second = tiktok.proxy_url, tiktok.add_proxy()
    clock = Clock()
    pool = ProxyPool([first, second], fail_limit=1, rest_s=60, clock=clock)
    tiktok.block_proxy(first)
    await fetch_all(pool, tmp_path / "blocked")
    assert pool.order() == [second, first]

    tiktok.unblock_proxy(first)
    clock.now += 61
    [download] = await fetch_all(pool, tmp_path / "again")

    assert isinstance(download, Download)
    assert page_proxies(tiktok) == [first, second, first]
    assert not pool.resting(first)
    assert pool.order() == [first, second]


async def test_a_post_every_proxy_calls_blocked_is_the_posts_own(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    # TikTok answers 10204 for removed posts too: from every address alike, it is the post.
    proxies = [tiktok.proxy_url, tiktok.add_proxy(), tiktok.add_proxy()]
    tiktok.inject(Fault.BLOCKED_IP, times=None)
    pool = ProxyPool(proxies, fail_limit=1, clock=Clock())

    error = await fetch_error(pool, tmp_path)

    assert (error.reason, error.kind) == (Reason.REMOVED, FailureKind.BLOCKED_IP)
    assert page_proxies(tiktok) == proxies
    assert tiktok.media_requests == 0
    # Not held against the proxies: they all said the same about the post.
    assert not any(pool.resting(proxy) for proxy in proxies)


@pytest.mark.parametrize(
    ("faults", "kind"),
    [
        pytest.param((Fault.CHALLENGE, Fault.CHALLENGE), FailureKind.CHALLENGE, id="challenges"),
        pytest.param((Fault.BLOCKED_IP, Fault.CHALLENGE), FailureKind.CHALLENGE, id="mixed"),
        pytest.param((Fault.CHALLENGE, Fault.BLOCKED_IP), FailureKind.BLOCKED_IP, id="mixed_back"),
    ],
)
async def test_every_proxy_refused_is_the_blocked_reason_with_the_last_kind(
    tiktok: TikTokStandIn, tmp_path: Path, faults: Sequence[Fault], kind: FailureKind
) -> None:
    proxies = [tiktok.proxy_url, tiktok.add_proxy()]
    for proxy, fault in zip(proxies, faults, strict=True):
        tiktok.block_proxy(proxy, fault)
    pool = ProxyPool(proxies, fail_limit=1, clock=Clock())

    error = await fetch_error(pool, tmp_path)

    assert (error.reason, error.kind) == (Reason.BLOCKED, kind)
    assert page_proxies(tiktok) == proxies
    # Another address answered otherwise: each refusal counts against its proxy.
    assert all(pool.resting(proxy) for proxy in proxies)


async def test_short_links_go_through_the_first_proxy_not_resting(
    tiktok: TikTokStandIn,
) -> None:
    first, second = tiktok.proxy_url, tiktok.add_proxy()
    tiktok.add_short_link("ZMabc123", f"/@dancer/video/{POST}")
    pool = ProxyPool([first, second], fail_limit=1, clock=Clock())
    resolver = HttpxLinkResolver(proxies=pool, verify_tls=False, timeout_s=10)
    short = parse_link("https://vm.tiktok.com/ZMabc123/")
    assert short is not None
    try:
        before = await resolver.resolve(short)
        pool.failed(first)
        after = await resolver.resolve(short)
    finally:
        await resolver.aclose()
    assert before.clip_id == after.clip_id == POST
    assert [r.proxy for r in tiktok.requests] == [first, second]


# -- what yt-dlp and gallery-dl say ------------------------------------------------------------


async def test_moved_page_data_is_an_extraction_failure_not_retried(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.inject(Fault.DATA_MOVED, times=None)
    error = await fetch_error(ProxyPool([tiktok.proxy_url]), tmp_path)
    assert (error.reason, error.kind) == (Reason.BLOCKED, FailureKind.EXTRACTION)
    assert "Unexpected response from webpage request" in error.detail
    assert len(page_proxies(tiktok)) == 1


async def test_a_server_error_that_outlasts_the_retries_is_a_server_error(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.inject(Fault.PAGE_ERROR, times=None)
    error = await fetch_error(ProxyPool([tiktok.proxy_url]), tmp_path)
    assert (error.reason, error.kind) == (Reason.FAILED, FailureKind.SERVER_ERROR)
    assert len(page_proxies(tiktok)) == 3


async def test_a_private_post_has_no_kind(tiktok: TikTokStandIn, tmp_path: Path) -> None:
    tiktok.add_status(POST, 10216)
    error = await fetch_error(ProxyPool([tiktok.proxy_url, tiktok.add_proxy()]), tmp_path)
    assert (error.reason, error.kind) == (Reason.PRIVATE, None)
    assert len(page_proxies(tiktok)) == 1


async def test_the_page_request_impersonates_a_browser(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.require_browser = True
    [download] = await fetch_all(ProxyPool([tiktok.proxy_url]), tmp_path)
    assert isinstance(download, Download)
    [page] = [r for r in tiktok.requests if r.host == TikTokStandIn.WEB_HOST]
    assert page.impersonated
    assert tiktok.served_faults == []


async def gallery_fetch(pool: ProxyPool, tmp_path: Path) -> Album | FetchError:
    workdir = tmp_path / "job"
    workdir.mkdir(mode=0o700, parents=True)
    try:
        return await slideshows(pool).fetch(photo_link(), workdir)
    except FetchError as err:
        return err


async def test_gallery_dl_names_a_challenged_photo_post(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.inject(Fault.CHALLENGE, times=None)
    error = await gallery_fetch(ProxyPool([tiktok.proxy_url]), tmp_path)
    assert isinstance(error, FetchError)
    assert (error.reason, error.kind) == (Reason.BLOCKED, FailureKind.CHALLENGE)
    assert tiktok.image_requests == 0


async def test_gallery_dl_moves_to_the_next_proxy_past_a_challenge(
    tiktok: TikTokStandIn, slides: tuple[Path, ...], tmp_path: Path
) -> None:
    first, second = tiktok.proxy_url, tiktok.add_proxy()
    tiktok.block_proxy(first, Fault.CHALLENGE)
    pool = ProxyPool([first, second], fail_limit=1, clock=Clock())

    album = await gallery_fetch(pool, tmp_path)

    assert isinstance(album, Album)
    assert [p.read_bytes() for p in album.images] == [s.read_bytes() for s in slides]
    assert page_proxies(tiktok)[-1] == second
    assert {r.proxy for r in tiktok.requests if r.host in TikTokStandIn.IMAGE_HOSTS} == {second}
    assert pool.order() == [second, first]


async def test_gallery_dl_meets_a_login_wall_with_its_kind(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.require_cookie(PHOTO, "sessionid", SESSION)
    error = await gallery_fetch(ProxyPool([tiktok.proxy_url]), tmp_path)
    assert isinstance(error, FetchError)
    assert (error.reason, error.kind) == (Reason.LOGIN_REQUIRED, FailureKind.LOGIN_WALL)
