from bot.caption import make_caption, utf16_len
from bot.model import ClipInfo


def info(description: str, author: str = "creator") -> ClipInfo:
    return ClipInfo(
        clip_id="7301234567890123456",
        author=author,
        nickname="Creator",
        description=description,
        webpage_url=f"https://www.tiktok.com/@{author}/video/7301234567890123456",
    )


def test_short_caption_has_handle_description_and_link() -> None:
    assert make_caption(info("dance #fyp")) == (
        "@creator: dance #fyp\nhttps://www.tiktok.com/@creator/video/7301234567890123456"
    )


def test_long_description_is_shortened_and_the_link_survives() -> None:
    text = make_caption(info("word " * 400))
    assert utf16_len(text) <= 1024
    assert text.endswith("\nhttps://www.tiktok.com/@creator/video/7301234567890123456")
    assert "…" in text
    assert text.startswith("@creator: word word")


def test_limit_counts_utf16_units_so_emoji_do_not_overflow() -> None:
    text = make_caption(info("😀" * 1000), limit=200)
    assert utf16_len(text) <= 200
    assert len(text) < 200


def test_whitespace_and_newlines_in_description_are_collapsed() -> None:
    assert make_caption(info("a\n\n b\tc")).startswith("@creator: a b c\n")


def test_no_description_gives_handle_and_link() -> None:
    assert make_caption(info("")) == (
        "@creator\nhttps://www.tiktok.com/@creator/video/7301234567890123456"
    )
