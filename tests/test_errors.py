"""yt-dlp's and gallery-dl's error texts: the reason a user is shown, and the kind of failure
when the site, not the post, is at fault."""

from __future__ import annotations

import pytest

from bot.model import FailureKind, Reason
from bot.ytdlp_errors import kind_for_error, reason_for_error


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "ERROR: [TikTok] 7301: You do not have permission to view this post. "
            "Log into an account that has access",
            Reason.PRIVATE,
        ),
        (
            "ERROR: [TikTok] 7301: Your IP address is blocked from accessing this post",
            Reason.REMOVED,
        ),
        ("ERROR: [TikTok] 7301: Video not available, status code 10231", Reason.REGION_LOCKED),
        ("ERROR: [TikTok] 7301: Video not available, status code 10101", Reason.REMOVED),
        (
            "ERROR: [TikTok] 7301: TikTok is requiring login for access to this content",
            Reason.LOGIN_REQUIRED,
        ),
        ("ERROR: [TikTok] 7301: No video formats found!", Reason.NOT_A_VIDEO),
        ("ERROR: Unsupported URL: https://example.com/", Reason.NOT_A_VIDEO),
        ("ERROR: unable to download video data: <urlopen error timed out>", Reason.TIMED_OUT),
        ("ERROR: unable to download video data: HTTP Error 403: Forbidden", Reason.BLOCKED),
        ("ERROR: [TikTok] 7301: Unable to extract universal data for rehydration", Reason.BLOCKED),
        (
            "[download][warning] File size larger than allowed maximum (1048576 > 200000)",
            Reason.TOO_LARGE,
        ),
        (
            "[tiktok][error] https://www.tiktok.com/@_/video/7301: Requested post not available",
            Reason.REMOVED,
        ),
        (
            "[tiktok][error] https://www.tiktok.com/@_/video/7301: Region locked - Try "
            "downloading with a VPN/proxy connection",
            Reason.REGION_LOCKED,
        ),
        ("ERROR: something nobody has seen", Reason.FAILED),
    ],
)
def test_ytdlp_errors_map_to_reasons(text: str, reason: Reason) -> None:
    assert reason_for_error(text) is reason


def test_reasons_are_short_plain_sentences() -> None:
    for reason in Reason:
        assert reason.message.endswith((".", "!"))
        assert len(reason.message) <= 80
        assert "Error" not in reason.message


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # yt-dlp 2026.11, as the TikTok stand-in makes it say them.
        (
            "ERROR: [TikTok] 7301: Unable to extract challenge data; please report this issue "
            "on  https://github.com/yt-dlp/yt-dlp/issues?q= , filling out the appropriate issue "
            "template. Confirm you are on the latest version using  yt-dlp -U",
            FailureKind.CHALLENGE,
        ),
        (
            "ERROR: [TikTok] 7301: Your IP address is blocked from accessing this post",
            FailureKind.BLOCKED_IP,
        ),
        (
            "ERROR: unable to download video data: HTTP Error 403: Forbidden",
            FailureKind.BLOCKED_IP,
        ),
        (
            "ERROR: [TikTok] 7301: Unexpected response from webpage request; please report this "
            "issue on  https://github.com/yt-dlp/yt-dlp/issues?q= , filling out the appropriate "
            "issue template. Confirm you are on the latest version using  yt-dlp -U",
            FailureKind.EXTRACTION,
        ),
        (
            "ERROR: [TikTok] 7301: Unable to extract universal data for rehydration",
            FailureKind.EXTRACTION,
        ),
        (
            "ERROR: [TikTok] 7301: TikTok is requiring login for access to this content. "
            "Use --cookies-from-browser or --cookies for the authentication.",
            FailureKind.LOGIN_WALL,
        ),
        (
            "ERROR: [TikTok] 7301: Unable to download webpage: HTTP Error 502: Bad Gateway",
            FailureKind.SERVER_ERROR,
        ),
        ("ERROR: unable to download video data: HTTP Error 503", FailureKind.SERVER_ERROR),
        ("ERROR: [TikTok] 7301: Operation too slow", FailureKind.SERVER_ERROR),
        ("ERROR: unable to download video data: Read timed out.", FailureKind.SERVER_ERROR),
        ("ERROR: 1543 bytes read, 2000 more expected", FailureKind.SERVER_ERROR),
        # gallery-dl 1.32's log lines.
        (
            "[tiktok][warning] 7301: Failed to solve JavaScript challenge. If you keep "
            "encountering this issue, please try again with the --write-pages option\n"
            "[tiktok][warning] 7301: Failed to retrieve rehydration data (1/5)",
            FailureKind.CHALLENGE,
        ),
        (
            "[tiktok][error] https://www.tiktok.com/@_/video/7301: Failed to extract post "
            "(AuthorizationError: HTTP redirect to login page ('https://www.tiktok.com/login'))",
            FailureKind.LOGIN_WALL,
        ),
        (
            "[downloader.http][warning] '403 Forbidden' for 'https://p16-sign-va.tiktokcdn.com/x'",
            FailureKind.BLOCKED_IP,
        ),
        (
            "[downloader.http][warning] '503 Service Unavailable' for 'https://x.tiktokcdn.com/'",
            FailureKind.SERVER_ERROR,
        ),
        # The post's own doing, or the bot's limits: no kind.
        (
            "ERROR: [TikTok] 7301: You do not have permission to view this post. "
            "Log into an account that has access",
            None,
        ),
        ("ERROR: [TikTok] 7301: Video not available, status code 10231", None),
        ("ERROR: [TikTok] 7301: Video not available, status code 10101", None),
        ("ERROR: unable to download video data: HTTP Error 404: Not Found", None),
        ("ERROR: [TikTok] 7301: No video formats found!", None),
        ("[download][warning] File size larger than allowed maximum (1048576 > 200000)", None),
        ("ERROR: something nobody has seen", None),
    ],
)
def test_errors_that_are_the_sites_doing_have_a_kind(text: str, kind: FailureKind | None) -> None:
    assert kind_for_error(text) is kind


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # TikTok's 10204 is also what a removed post answers: the reason stays the post's own.
        (
            "ERROR: [TikTok] 7301: Your IP address is blocked from accessing this post",
            Reason.REMOVED,
        ),
        (
            "ERROR: [TikTok] 7301: Unexpected response from webpage request; please report this",
            Reason.BLOCKED,
        ),
        ("ERROR: [TikTok] 7301: Unable to extract challenge data", Reason.BLOCKED),
        (
            "[tiktok][error] https://www.tiktok.com/@_/video/7301: Failed to extract post "
            "(AuthorizationError: HTTP redirect to login page ('https://www.tiktok.com/login'))",
            Reason.LOGIN_REQUIRED,
        ),
    ],
)
def test_breakages_keep_their_reasons(text: str, reason: Reason) -> None:
    assert reason_for_error(text) is reason
