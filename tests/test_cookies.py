"""DOWNLOAD_COOKIES_FILE: which files are refused (with one line saying why), and what a
loaded jar holds; the file's contents never appear in a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cookies import CookieFileInfo, CookiesFileError, check_cookies_file, load_cookie_jar
from bot.engine import Engine
from bot.settings import CoreSettings

SECRET = "s3cr3t-session-value"
LINES = (
    "# Netscape HTTP Cookie File\n"
    "# https://curl.haxx.se/rfc/cookie_spec.html\n"
    "\n"
    f".tiktok.com\tTRUE\t/\tTRUE\t2147483647\tsessionid\t{SECRET}\n"
    "#HttpOnly_.tiktok.com\tTRUE\t/\tTRUE\t2147483647\tsid_tt\tabc\n"
    "www.tiktok.com\tFALSE\t/\tFALSE\t0\tlang\ten\n"
)


def cookies_file(path: Path, text: str = LINES, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(CookiesFileError) as caught:
        check_cookies_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert SECRET not in message
    assert str(path) in message
    return message


def test_a_netscape_file_only_its_owner_reads_is_accepted(tmp_path: Path) -> None:
    info = check_cookies_file(cookies_file(tmp_path / "cookies.txt"))
    assert info == CookieFileInfo(count=3, domains=(".tiktok.com", "www.tiktok.com"))


def test_the_short_header_is_accepted_too(tmp_path: Path) -> None:
    text = LINES.replace("# Netscape HTTP Cookie File", "# HTTP Cookie File")
    assert check_cookies_file(cookies_file(tmp_path / "cookies.txt", text)).count == 3


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    message = refusal(cookies_file(tmp_path / "cookies.txt", mode=mode))
    assert message.endswith("is readable by other users: chmod 600 it")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        pytest.param('[{"name": "sessionid", "value": "x"}]', "not a Netscape", id="json"),
        pytest.param(
            LINES.removeprefix("# Netscape HTTP Cookie File\n"), "not a Netscape", id="no_header"
        ),
        pytest.param(
            LINES + f".tiktok.com TRUE / TRUE 0 sessionid {SECRET}\n",
            "line 7 is not a cookie",
            id="spaces",
        ),
        pytest.param(
            LINES + f".tiktok.com\tTRUE\t/\tTRUE\tsoon\tsessionid\t{SECRET}\n",
            "line 7 has no valid expiry",
            id="bad_expiry",
        ),
        pytest.param("", "not a Netscape", id="empty"),
        pytest.param(
            "# Netscape HTTP Cookie File\n# nothing here\n\n", "holds no cookies", id="no_cookies"
        ),
    ],
)
def test_a_file_yt_dlp_would_not_read_is_refused(tmp_path: Path, text: str, why: str) -> None:
    assert why in refusal(cookies_file(tmp_path / "cookies.txt", text))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nowhere.txt").endswith("does not exist")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cookies"
    folder.mkdir(mode=0o700)
    assert "cannot be read" in refusal(folder)


def test_the_loaded_jar_holds_the_cookies_and_knows_no_file(tmp_path: Path) -> None:
    path = cookies_file(tmp_path / "cookies.txt")
    before = path.read_bytes()
    jar = load_cookie_jar(path)
    assert {(c.domain, c.name, c.value) for c in jar} == {
        (".tiktok.com", "sessionid", SECRET),
        (".tiktok.com", "sid_tt", "abc"),
        ("www.tiktok.com", "lang", "en"),
    }
    assert jar.filename is None
    with pytest.raises(ValueError, match="filename was not supplied"):
        jar.save()
    assert path.read_bytes() == before


def test_the_engine_refuses_to_start_with_a_refused_file(tmp_path: Path) -> None:
    path = cookies_file(tmp_path / "cookies.txt", mode=0o644)
    settings = CoreSettings(
        _env_file=None,
        data_dir=tmp_path / "data",
        download_cookies_file=path,
    )
    with pytest.raises(CookiesFileError, match="chmod 600 it"):
        Engine(settings)
    assert not (tmp_path / "data").exists()
