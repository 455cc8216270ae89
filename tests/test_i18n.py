"""Message catalogues: every user-facing text is in them, translated into every language, with
the same placeholders and links; and the adapters send no text that is not."""

from __future__ import annotations

import ast
import dataclasses
import re
import shutil
import string
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
from babel.messages.pofile import read_po

from bot.i18n import (
    DOMAIN,
    LANGUAGES,
    LOCALES_DIR,
    SOURCE_LANGUAGE,
    Catalogues,
    extract,
    extract_template,
    language_of,
    placeholders,
    po_path,
)
from bot.intake import NO_LINK_TEXT, NO_LINK_TIKTOK_TEXT
from bot.model import Reason

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "run `.venv/bin/python -m bot.i18n extract` and translate the new texts"
TRANSLATED = [language for language in LANGUAGES if language != SOURCE_LANGUAGE]
URL = re.compile(r"https?://\S+")


@pytest.fixture(scope="module")
def catalogues() -> Catalogues:
    return Catalogues.load()


def test_the_template_holds_exactly_the_marked_texts(catalogues: Catalogues) -> None:
    marked = {message.id for message in extract_template(ROOT) if message.id}
    assert marked - catalogues.msgids == set(), f"texts not in the catalogue: {REGENERATE}"
    assert catalogues.msgids - marked == set(), f"texts no longer marked: {REGENERATE}"


def test_extraction_is_up_to_date_and_keeps_translations(
    catalogues: Catalogues, tmp_path: Path
) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, locales)
    extract(ROOT, locales)
    again = Catalogues.load(locales)
    assert again.msgids == catalogues.msgids, REGENERATE
    for language in LANGUAGES:
        assert dict(again.translations[language]) == dict(catalogues.translations[language])


def test_extraction_starts_a_catalogue_for_a_language_without_one(tmp_path: Path) -> None:
    extract(ROOT, tmp_path)
    fresh = Catalogues.load(tmp_path)
    assert fresh.msgids
    assert fresh.missing("de") == sorted(fresh.msgids)
    assert fresh.text("de", "Saved.") == "Saved."


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated(catalogues: Catalogues, language: str) -> None:
    assert catalogues.missing(language) == [], f"{language}: untranslated or fuzzy texts"


@pytest.mark.parametrize("language", TRANSLATED)
def test_no_translation_is_empty_or_fuzzy(language: str) -> None:
    with po_path(LOCALES_DIR, language).open("rb") as file:
        catalog = read_po(file, locale=language, domain=DOMAIN)
    for message in catalog:
        if not message.id:
            continue
        assert message.string, f"{language}: {message.id!r} has no translation"
        assert not message.fuzzy, f"{language}: {message.id!r} is fuzzy"


def _translations(catalogues: Catalogues) -> Iterator[tuple[str, str, str]]:
    for language in TRANSLATED:
        for msgid, translated in catalogues.translations[language].items():
            yield language, msgid, translated


def test_translations_keep_placeholders_and_links(catalogues: Catalogues) -> None:
    for language, msgid, translated in _translations(catalogues):
        assert placeholders(translated) == placeholders(msgid), (language, msgid, translated)
        assert URL.findall(translated) == URL.findall(msgid), (language, msgid, translated)
        assert translated.count("\n") == msgid.count("\n"), (language, msgid)


def test_translations_keep_commands(catalogues: Catalogues) -> None:
    command = re.compile(r"(?<![\w/])/[a-z_]+")
    for language, msgid, translated in _translations(catalogues):
        assert sorted(command.findall(translated)) == sorted(command.findall(msgid)), (
            language,
            msgid,
        )


def test_templates_use_named_placeholders_only(catalogues: Catalogues) -> None:
    for msgid in catalogues.msgids:
        fields = [name for _, name, _, _ in string.Formatter().parse(msgid) if name is not None]
        assert all(name.isidentifier() for name in fields), msgid


def test_every_reason_is_in_the_catalogue(catalogues: Catalogues) -> None:
    for reason in Reason:
        assert reason.message in catalogues.msgids, reason


def test_the_no_link_texts_are_templates_of_the_sites() -> None:
    assert placeholders(NO_LINK_TIKTOK_TEXT) == {"sites"}
    assert placeholders(NO_LINK_TEXT) == {"sites"}


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("es-ES", "es"),
        ("es-419", "es"),
        ("pt-BR", "pt"),
        ("pt_BR", "pt"),
        ("ru", "ru"),
        ("de-AT", "de"),
        ("DE", "de"),
        ("en-US", "en"),
        ("en-GB", "en"),
        (None, "en"),
        ("", "en"),
        ("zz", "en"),
        ("fr-FR", "en"),
    ],
)
def test_language_of_platform_codes(code: str | None, language: str) -> None:
    assert language_of(code) == language


def test_text_in_the_users_language(catalogues: Catalogues) -> None:
    assert catalogues.text("es-419", "Saved.") == "Guardado."
    assert catalogues.text("de", "Saved.") == "Gespeichert."
    assert catalogues.text("zz", "Saved.") == "Saved."
    assert catalogues.text(None, "Saved.") == "Saved."
    assert catalogues.text("es", "A text nobody marked") == "A text nobody marked"


def test_text_fills_fields(catalogues: Catalogues) -> None:
    english = catalogues.text("en", NO_LINK_TEXT, sites="TikTok, Streamable")
    assert english == "I send the video behind links from TikTok, Streamable."
    for language in TRANSLATED:
        said = catalogues.text(language, NO_LINK_TEXT, sites="TikTok, Streamable")
        assert "TikTok, Streamable" in said
        assert said != english


def test_a_broken_translation_falls_back_to_english() -> None:
    broken = Catalogues(
        msgids=frozenset({"Hi {name}"}),
        translations=MappingProxyType({"es": MappingProxyType({"Hi {name}": "Hola {nombre}"})}),
    )
    assert broken.text("es", "Hi {name}", name="Ana") == "Hi Ana"


def test_catalogues_cannot_change(catalogues: Catalogues) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogues.msgids = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError):
        catalogues.translations["es"]["Saved."] = "x"  # type: ignore[index]


# Calls that put text in front of a user, and which of their arguments hold it ("*": every
# positional argument; "**": every keyword; a name: that keyword).
_SENDS: dict[str, frozenset[str]] = {
    name: frozenset({"*", "text", "content"})
    for name in (
        "reply_text",
        "reply",
        "send",
        "send_message",
        "answer",
        "tell",
        "tell_privately",
        "tell_inline",
        "edit_message_text",
        "edit_original_response",
    )
} | {
    "InlineKeyboardButton": frozenset({"*", "text"}),
    "InlineQueryResultsButton": frozenset({"text"}),
    "InlineQueryResultArticle": frozenset({"title", "description"}),
    "InlineQueryResultCachedVideo": frozenset({"title"}),
    "InputTextMessageContent": frozenset({"*", "message_text"}),
    "command": frozenset({"description"}),
    "context_menu": frozenset({"name"}),
    "describe": frozenset({"**"}),
    "Button": frozenset({"label"}),
    "Select": frozenset({"placeholder"}),
    "SelectOption": frozenset({"label", "description"}),
    "Embed": frozenset({"title", "description"}),
}


# The core's own objects, whose calls of those names take identifiers, not texts.
_CORE_RECEIVERS = frozenset({"_inline", "_intake", "_engine", "engine"})


def _called(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        receiver = func.value
        if isinstance(receiver, ast.Attribute) and receiver.attr in _CORE_RECEIVERS:
            return ""
        return func.attr
    return getattr(func, "id", "")


def _words(node: ast.expr) -> Iterator[str]:
    """The literal text of an argument that would reach the user untranslated."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                yield part.value
    elif isinstance(node, ast.IfExp):
        yield from _words(node.body)
        yield from _words(node.orelse)


def test_adapters_send_no_text_outside_the_catalogue(catalogues: Catalogues) -> None:
    found = []
    for path in sorted((ROOT / "adapters").rglob("*.py")):
        if path.name == "doctor.py":
            continue  # the operator's checks, in English
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or _called(node) not in _SENDS:
                continue
            held = _SENDS[_called(node)]
            arguments = [arg for arg in node.args if "*" in held] + [
                keyword.value
                for keyword in node.keywords
                if keyword.arg in held or (keyword.arg is not None and "**" in held)
            ]
            for argument in arguments:
                for text in _words(argument):
                    if re.search(r"[^\W\d_]{2,}", text) and text not in catalogues.msgids:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    assert found == [], "user-facing texts to mark with N_(...): " + REGENERATE
