import pytest

from bot.model import Reason
from bot.ytdlp_errors import reason_for_error


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
