"""The cobalt stand-in speaks cobalt's API as its docs and code say (tests/standins/cobalt.py)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.standins.clips import Clip, make_image
from tests.standins.cobalt import CobaltStandIn

KEY = "4b5c6d7e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
OTHER_KEY = "00000000-1111-4222-8333-444444444444"
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


def post_url(post_id: str, kind: str = "video") -> str:
    return f"https://www.tiktok.com/@_/{kind}/{post_id}"


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("slides")
    return [make_image(folder / f"{n}.jpg", width=320, height=480, seed=n) for n in (1, 2)]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def ask(
    http: httpx.AsyncClient,
    cobalt: CobaltStandIn,
    body: Any,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await http.post(cobalt.url, json=body, headers=headers or JSON_HEADERS)


def code_of(response: httpx.Response) -> str:
    answer = response.json()
    assert answer["status"] == "error"
    return str(answer["error"]["code"])


async def test_get_root_is_the_instance_info(
    cobalt: CobaltStandIn, http: httpx.AsyncClient
) -> None:
    response = await http.get(cobalt.url)
    assert response.status_code == 200
    info = response.json()
    assert info["cobalt"]["url"] == cobalt.url
    assert info["cobalt"]["services"] == ["tiktok"]
    assert info["cobalt"]["version"] == CobaltStandIn.VERSION
    assert int(info["cobalt"]["startTime"]) <= time.time() * 1000
    assert set(info["git"]) == {"commit", "branch", "remote"}
    other = await http.get(cobalt.url + "anything")
    assert other.status_code == 302
    assert other.headers["location"] == "/"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Content-Type": "application/json"}, "error.api.header.accept"),
        ({"Accept": "*/*", "Content-Type": "application/json"}, "error.api.header.accept"),
        (
            {"Accept": "application/json", "Content-Type": "text/plain"},
            "error.api.header.content_type",
        ),
    ],
)
async def test_headers_must_name_json(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    response = await http.post(cobalt.url, content=b'{"url":"x"}', headers=headers)
    assert response.status_code == 400
    assert code_of(response) == code


async def test_json_with_charset_is_accepted(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, h264_clip: Clip
) -> None:
    cobalt.add_video("1", h264_clip.path)
    headers = {k: f"{v}; charset=utf-8" for k, v in JSON_HEADERS.items()}
    response = await ask(http, cobalt, {"url": post_url("1")}, headers)
    assert response.json()["status"] == "tunnel"


POST_1 = "https://www.tiktok.com/@_/video/1"


def body(url: object, **options: object) -> bytes:
    return json.dumps({"url": url, **options}).encode()


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "error.api.invalid_body"),
        (b'"a string"', "error.api.invalid_body"),
        (body(POST_1, pad="x" * 1100), "error.api.invalid_body"),
        (b"{}", "error.api.link.missing"),
        (b"[]", "error.api.link.missing"),
        (body(""), "error.api.link.missing"),
        (body(5), "error.api.invalid_body"),
        (body("not a url"), "error.api.invalid_body"),
        (body(POST_1, unknownKey=True), "error.api.invalid_body"),
        (body(POST_1, videoQuality=1080), "error.api.invalid_body"),
        (body(POST_1, allowH265="false"), "error.api.invalid_body"),
        (body("https://example.com/video/1"), "error.api.link.invalid"),
        (body("https://evil.tiktok.com/@_/video/1"), "error.api.link.invalid"),
        (body("https://www.tiktok.com/@u/live/now/x"), "error.api.link.unsupported"),
        (body("https://www.tiktok.com/@_/video/" + "1" * 22), "error.api.link.unsupported"),
        (body("https://www.tiktok.com/@_/video/42"), "error.api.content.post.unavailable"),
        (body("https://vm.tiktok.com/ZMabc/"), "error.api.fetch.short_link"),
    ],
)
async def test_bodies_are_checked_as_cobalt_checks_them(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, content: bytes, code: str
) -> None:
    response = await http.post(cobalt.url, content=content, headers=JSON_HEADERS)
    assert response.status_code == 400
    assert code_of(response) == code
    if code == "error.api.link.unsupported":
        assert response.json()["error"]["context"] == {"service": "tiktok"}


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "error.api.auth.key.missing"),
        ("Bearer abc", "error.api.auth.key.not_api_key"),
        ("Api-Key not-a-uuid", "error.api.auth.key.invalid"),
        (f"Api-Key {KEY.upper()}", "error.api.auth.key.invalid"),
        (f"Api-Key  {KEY}", "error.api.auth.key.invalid"),
        (f"Api-Key {OTHER_KEY}", "error.api.auth.key.not_found"),
    ],
)
async def test_api_key_is_required(
    http: httpx.AsyncClient, h264_clip: Clip, authorization: str | None, code: str
) -> None:
    async with CobaltStandIn(api_key=KEY) as cobalt:
        cobalt.add_video("1", h264_clip.path)
        headers = dict(JSON_HEADERS)
        if authorization is not None:
            headers["Authorization"] = authorization
        # The key is checked before the body is read.
        response = await http.post(cobalt.url, content=b"{broken", headers=headers)
        assert response.status_code == 400
        assert code_of(response) == code
        good = await ask(
            http, cobalt, {"url": post_url("1")}, {**headers, "Authorization": f"Api-Key {KEY}"}
        )
        assert good.json()["status"] == "tunnel"  # fmt: skip


async def test_headers_are_checked_before_the_key(http: httpx.AsyncClient) -> None:
    async with CobaltStandIn(api_key=KEY) as cobalt:
        response = await http.post(cobalt.url, json={"url": post_url("1")})
        assert code_of(response) == "error.api.header.accept"


async def test_optional_key_lets_anonymous_requests_in_but_not_bad_keys(
    http: httpx.AsyncClient, h264_clip: Clip
) -> None:
    async with CobaltStandIn(api_key=KEY, auth_required=False) as cobalt:
        cobalt.add_video("1", h264_clip.path)
        assert (await ask(http, cobalt, {"url": post_url("1")})).json()["status"] == "tunnel"
        bad = await ask(
            http, cobalt, {"url": post_url("1")}, {**JSON_HEADERS, "Authorization": "Api-Key x"}
        )
        assert code_of(bad) == "error.api.auth.key.invalid"


def test_keys_are_lower_case_uuids() -> None:
    with pytest.raises(ValueError, match="UUID"):
        CobaltStandIn(api_key="secret")


async def test_video_is_a_tunnel_that_streams_the_file(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, h264_clip: Clip
) -> None:
    cobalt.add_video("7300000000000000001", h264_clip.path, author="some.one_1")
    body = {"url": post_url("7300000000000000001"), "videoQuality": "1080", "allowH265": False}
    response = await ask(http, cobalt, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer == {
        "status": "tunnel",
        "url": answer["url"],
        "filename": "tiktok_some.one_1_7300000000000000001.mp4",
    }
    tunnel = httpx.URL(answer["url"])
    assert str(tunnel.copy_with(query=None)) == cobalt.url + "tunnel"
    params = tunnel.params
    lengths = [len(params[k]) for k in ("id", "exp", "sig", "sec", "iv")]
    assert lengths == [21, 13, 43, 43, 22]
    media = await http.get(tunnel)
    assert media.status_code == 200
    assert media.content == h264_clip.path.read_bytes()
    assert media.headers["content-type"] == "video/mp4"
    assert int(media.headers["content-length"]) == h264_clip.size
    assert "tiktok_some.one_1_7300000000000000001.mp4" in media.headers["content-disposition"]
    assert cobalt.api_requests[0].body == body
    assert cobalt.api_requests[0].headers["Accept"] == "application/json"
    assert len(cobalt.tunnel_requests) == 1


@pytest.mark.parametrize("path", ["/@someone/photo/55", "/v/55.html", "/i18n/share/video/55"])
async def test_other_post_paths_find_the_post(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, h264_clip: Clip, path: str
) -> None:
    cobalt.add_video("55", h264_clip.path)
    response = await ask(http, cobalt, {"url": f"https://m.tiktok.com{path}?_r=1"})
    assert response.json()["status"] == "tunnel"


async def test_short_links_lead_to_their_post(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, h264_clip: Clip
) -> None:
    cobalt.add_video("55", h264_clip.path)
    cobalt.add_short_link("ZMabc", "55")
    response = await ask(http, cobalt, {"url": "https://vt.tiktok.com/ZMabc/"})
    assert response.json()["filename"] == "tiktok_user_55.mp4"


async def test_tunnel_links_are_checked(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, h264_clip: Clip
) -> None:
    cobalt.add_video("1", h264_clip.path)
    url = httpx.URL((await ask(http, cobalt, {"url": post_url("1")})).json()["url"])
    params = dict(url.params)
    assert (await http.get(url.copy_with(params={**params, "id": "short"}))).status_code == 400
    assert (await http.get(url.copy_add_param("p", "1"))).status_code == 200
    forged = {**params, "sig": "A" * 43}
    assert (await http.get(url.copy_with(params=forged))).status_code == 401
    assert (await http.get(url.copy_with(params={**params, "exp": "1" * 13}))).status_code == 401


async def test_expired_tunnels_answer_404(http: httpx.AsyncClient, h264_clip: Clip) -> None:
    async with CobaltStandIn(stream_lifespan_s=0) as cobalt:
        cobalt.add_video("1", h264_clip.path)
        url = (await ask(http, cobalt, {"url": post_url("1")})).json()["url"]
        assert (await http.get(url)).status_code == 404


async def test_tunnels_pass_an_upstream_status_through(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, h264_clip: Clip
) -> None:
    cobalt.add_video("1", h264_clip.path)
    cobalt.knobs.tunnel_status = 403
    url = (await ask(http, cobalt, {"url": post_url("1")})).json()["url"]
    assert (await http.get(url)).status_code == 403


async def test_redirect_unless_always_proxy(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, h264_clip: Clip
) -> None:
    cdn = "https://cdn-cf-east.streamable.com/video/mp4/abc.mp4?Expires=1"
    cobalt.add_video("1", h264_clip.path, mode="redirect", redirect_url=cdn)
    plain = (await ask(http, cobalt, {"url": post_url("1")})).json()
    assert plain == {"status": "redirect", "url": cdn, "filename": "tiktok_user_1.mp4"}
    proxied = (await ask(http, cobalt, {"url": post_url("1"), "alwaysProxy": True})).json()
    assert proxied["status"] == "tunnel"
    assert (await http.get(proxied["url"])).content == h264_clip.path.read_bytes()


async def test_photo_post_is_a_picker_of_tunnels_with_audio(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, slides: list[Path], music: Path
) -> None:
    cobalt.add_photos("9", slides, music, author="snaps")
    answer = (await ask(http, cobalt, {"url": post_url("9", "photo")})).json()
    assert answer["status"] == "picker"
    assert [item["type"] for item in answer["picker"]] == ["photo", "photo"]
    assert answer["audioFilename"] == "tiktok_snaps_9_audio_original.mp3"
    for item, slide in zip(answer["picker"], slides, strict=True):
        got = await http.get(item["url"])
        assert got.content == slide.read_bytes()
        assert got.headers["content-type"] == "image/jpeg"
    audio = await http.get(answer["audio"])
    assert audio.content == music.read_bytes()
    # An ffmpeg-rendered tunnel: no length, only an estimate.
    assert "content-length" not in audio.headers
    assert audio.headers["estimated-content-length"] == str(music.stat().st_size)


async def test_photo_slides_are_cdn_urls_without_always_proxy(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, slides: list[Path], music: Path
) -> None:
    cdn = [f"https://p16-sign-va.tiktokcdn.com/tos/{n}.jpeg" for n in (1, 2)]
    cobalt.add_photos("9", slides, music, cdn_urls=cdn)
    plain = (await ask(http, cobalt, {"url": post_url("9")})).json()
    assert [item["url"] for item in plain["picker"]] == cdn
    assert plain["audio"].startswith(cobalt.url + "tunnel?")
    proxied = (await ask(http, cobalt, {"url": post_url("9"), "alwaysProxy": True})).json()
    assert all(item["url"].startswith(cobalt.url) for item in proxied["picker"])


async def test_photo_post_without_music_breaks_cobalt(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, slides: list[Path]
) -> None:
    cobalt.add_photos("9", slides, None)
    response = await ask(http, cobalt, {"url": post_url("9")})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "error.api.fetch.critical",
        "context": {"service": "tiktok"},
    }


@pytest.mark.parametrize(
    ("code", "context"),
    [
        ("error.api.fetch.empty", None),
        ("error.api.content.post.age", None),
        ("error.api.fetch.fail", {"service": "tiktok"}),
        ("error.api.content.too_long", {"limit": 180.0}),
    ],
)
async def test_errors_carry_cobalts_context(
    cobalt: CobaltStandIn, http: httpx.AsyncClient, code: str, context: dict[str, Any] | None
) -> None:
    cobalt.add_error("3", code)
    response = await ask(http, cobalt, {"url": post_url("3")})
    assert response.status_code == 400
    assert response.json()["error"] == (
        {"code": code, "context": context} if context else {"code": code}
    )


async def test_critical_errors_answer_500(cobalt: CobaltStandIn, http: httpx.AsyncClient) -> None:
    cobalt.add_error("3", "error.api.fetch.critical.core", critical=True)
    response = await ask(http, cobalt, {"url": post_url("3")})
    assert response.status_code == 500
    assert response.json() == {
        "status": "error",
        "error": {"code": "error.api.fetch.critical.core"},
        "critical": True,
    }


async def test_rate_limit_answers_429(http: httpx.AsyncClient, h264_clip: Clip) -> None:
    async with CobaltStandIn(rate_limit=1) as cobalt:
        cobalt.add_video("1", h264_clip.path)
        assert (await ask(http, cobalt, {"url": post_url("1")})).status_code == 200
        response = await ask(http, cobalt, {"url": post_url("1")})
        assert response.status_code == 429
        assert response.json()["error"] == {
            "code": "error.api.rate_exceeded",
            "context": {"limit": 60},
        }
        assert response.headers["ratelimit-remaining"] == "0"


async def test_local_processing_answer(http: httpx.AsyncClient, h264_clip: Clip) -> None:
    async with CobaltStandIn(answer_local_processing=True) as cobalt:
        cobalt.add_video("1", h264_clip.path)
        answer = (await ask(http, cobalt, {"url": post_url("1")})).json()
        assert answer["status"] == "local-processing"
        assert answer["output"] == {"type": "video/mp4", "filename": "tiktok_user_1.mp4"}
        assert (await http.get(answer["tunnel"][0])).content == h264_clip.path.read_bytes()
