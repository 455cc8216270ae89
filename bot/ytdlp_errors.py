"""The one place yt-dlp's (and gallery-dl's) error texts become reasons a user is shown, the
kinds of site-side failure they show, and the table of failures another attempt may get past."""

from __future__ import annotations

from bot.model import FailureKind, Reason

# The texts yt-dlp raises (DESIGN.md section 5), first match wins.
_ERROR_TEXTS: tuple[tuple[str, Reason], ...] = (
    ("do not have permission to view this post", Reason.PRIVATE),
    # gallery-dl names TikTok's status codes.
    ("error code 10216", Reason.PRIVATE),
    ("error code 10222", Reason.PRIVATE),
    ("error code 10204", Reason.REMOVED),
    ("error code 10231", Reason.REGION_LOCKED),
    # gallery-dl 1.32's words for 10204 and 10231.
    ("requested post not available", Reason.REMOVED),
    ("region locked", Reason.REGION_LOCKED),
    ("ip address is blocked from accessing this post", Reason.REMOVED),
    ("status code 10231", Reason.REGION_LOCKED),
    ("not available in your", Reason.REGION_LOCKED),
    ("video not available, status code", Reason.REMOVED),
    ("requiring login", Reason.LOGIN_REQUIRED),
    ("log in for access", Reason.LOGIN_REQUIRED),
    ("login required", Reason.LOGIN_REQUIRED),
    # gallery-dl, when the post page redirects to /login.
    ("redirect to login page", Reason.LOGIN_REQUIRED),
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
    ("'403 forbidden'", Reason.BLOCKED),
    ("http error 429", Reason.BLOCKED),
    ("'429 too many requests'", Reason.BLOCKED),
    ("challenge", Reason.BLOCKED),
    ("unable to extract", Reason.BLOCKED),
    ("unexpected response from webpage request", Reason.BLOCKED),
    ("failed to retrieve rehydration data", Reason.BLOCKED),
)

# How the site refused, when it is not the post's own doing (first match wins). yt-dlp
# 2026.11's texts after "[TikTok] ID: ", and gallery-dl 1.32's log lines.
_KIND_TEXTS: tuple[tuple[str, FailureKind], ...] = (
    # yt-dlp: a "Please wait..." page without the challenge it knows how to solve.
    ("unable to extract challenge data", FailureKind.CHALLENGE),
    ("unable to solve js challenge", FailureKind.CHALLENGE),
    # gallery-dl says this for any page without the data, and tries the challenge first.
    ("failed to solve javascript challenge", FailureKind.CHALLENGE),
    # statusCode 10204, which TikTok also uses for removed posts (gallery-dl: "not available").
    ("ip address is blocked from accessing this post", FailureKind.BLOCKED_IP),
    ("requested post not available", FailureKind.BLOCKED_IP),
    ("http error 403", FailureKind.BLOCKED_IP),
    ("'403 forbidden'", FailureKind.BLOCKED_IP),
    ("http error 429", FailureKind.BLOCKED_IP),
    ("'429 too many requests'", FailureKind.BLOCKED_IP),
    ("requiring login", FailureKind.LOGIN_WALL),
    ("log in for access", FailureKind.LOGIN_WALL),
    ("redirect to login page", FailureKind.LOGIN_WALL),
    # The page came without data where yt-dlp (or gallery-dl) looks: the site changed.
    ("unexpected response from webpage request", FailureKind.EXTRACTION),
    ("unable to extract", FailureKind.EXTRACTION),
    ("failed to retrieve rehydration data", FailureKind.EXTRACTION),
    ("http error 5", FailureKind.SERVER_ERROR),
    ("'500 ", FailureKind.SERVER_ERROR),
    ("'502 ", FailureKind.SERVER_ERROR),
    ("'503 ", FailureKind.SERVER_ERROR),
    ("'504 ", FailureKind.SERVER_ERROR),
    ("timed out", FailureKind.SERVER_ERROR),
    ("timeout", FailureKind.SERVER_ERROR),
    ("operation too slow", FailureKind.SERVER_ERROR),
    ("more expected", FailureKind.SERVER_ERROR),
    ("connection reset", FailureKind.SERVER_ERROR),
    ("connection aborted", FailureKind.SERVER_ERROR),
    ("remote end closed", FailureKind.SERVER_ERROR),
    ("incompleteread", FailureKind.SERVER_ERROR),
    ("incomplete read", FailureKind.SERVER_ERROR),
)

# Reasons that are the post's own (or the bot's limits): no kind, whatever the text says.
_POSTS_OWN = frozenset(
    {
        Reason.PRIVATE,
        Reason.REGION_LOCKED,
        Reason.NOT_A_VIDEO,
        Reason.TOO_LARGE,
        Reason.TOO_LONG,
        Reason.UNSUPPORTED_SITE,
    }
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


def kind_for_error(text: str) -> FailureKind | None:
    """How the site refused, by a yt-dlp or gallery-dl error text; None when the post itself
    is why (private, removed, too long, too large) or the text says nothing known."""
    if reason_for_error(text) in _POSTS_OWN:
        return None
    lowered = text.lower()
    for needle, kind in _KIND_TEXTS:
        if needle in lowered:
            return kind
    return None


def is_transient(text: str) -> bool:
    """Whether a yt-dlp error message names a failure that another attempt may get past."""
    lowered = text.lower()
    return any(needle in lowered for needle in _TRANSIENT_TEXTS)
