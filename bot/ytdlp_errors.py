"""The one place yt-dlp's (and gallery-dl's) error texts become reasons a user is shown, and
the table of failures another attempt may get past."""

from __future__ import annotations

from bot.model import Reason

# The texts yt-dlp raises (DESIGN.md section 5), first match wins.
_ERROR_TEXTS: tuple[tuple[str, Reason], ...] = (
    ("do not have permission to view this post", Reason.PRIVATE),
    # gallery-dl names TikTok's status codes.
    ("error code 10216", Reason.PRIVATE),
    ("error code 10222", Reason.PRIVATE),
    ("error code 10204", Reason.REMOVED),
    ("error code 10231", Reason.REGION_LOCKED),
    ("ip address is blocked from accessing this post", Reason.REMOVED),
    ("status code 10231", Reason.REGION_LOCKED),
    ("not available in your", Reason.REGION_LOCKED),
    ("video not available, status code", Reason.REMOVED),
    ("requiring login", Reason.LOGIN_REQUIRED),
    ("log in for access", Reason.LOGIN_REQUIRED),
    ("login required", Reason.LOGIN_REQUIRED),
    # gallery-dl skips a file whose announced size is over --filesize-max.
    ("larger than allowed maximum", Reason.TOO_LARGE),
    ("no video formats found", Reason.NOT_A_VIDEO),
    ("unsupported url", Reason.NOT_A_VIDEO),
    ("no suitable extractor", Reason.NOT_A_VIDEO),
    ("timed out", Reason.TIMED_OUT),
    ("timeout", Reason.TIMED_OUT),
    # curl_cffi (the page request) gives up on a silent server with this.
    ("operation too slow", Reason.TIMED_OUT),
    ("http error 404", Reason.REMOVED),
    ("http error 403", Reason.BLOCKED),
    ("http error 429", Reason.BLOCKED),
    ("unable to extract universal data", Reason.BLOCKED),
    ("challenge", Reason.BLOCKED),
    ("unexpected response from webpage request", Reason.BLOCKED),
)

# Failures a fresh attempt may get past: server errors, resets, cut-off bodies, silence.
# yt-dlp retries the media itself (`retries`) but never the page, so whole attempts are ours.
_TRANSIENT_TEXTS = (
    "http error 5",
    "timed out",
    "timeout",
    "operation too slow",
    "more expected",
    "connection reset",
    "connection aborted",
    "remote end closed",
    "incompleteread",
    "incomplete read",
)


def reason_for_error(text: str) -> Reason:
    """Map a yt-dlp error message to the reason a user is shown."""
    lowered = text.lower()
    for needle, reason in _ERROR_TEXTS:
        if needle in lowered:
            return reason
    return Reason.FAILED


def is_transient(text: str) -> bool:
    """Whether a yt-dlp error message names a failure that another attempt may get past."""
    lowered = text.lower()
    return any(needle in lowered for needle in _TRANSIENT_TEXTS)
