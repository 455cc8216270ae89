"""Message catalogues: every text a user sees, in their language.

Texts are written in English where they are defined, marked with `N_(...)` (which changes
nothing) so that extraction finds them. `Catalogues.load()` reads the translations once at
start-up (gettext .po files read with Babel); `Catalogues.text(language, msgid, **fields)` gives
a text in a language, English where a translation is missing.

After adding or changing a marked text, regenerate the template and the .po files (existing
translations are kept; changed texts come back fuzzy, new ones empty) and translate them:

    .venv/bin/python -m bot.i18n extract

Operator messages (bot.breakage), logs and captions stay English and are not marked.
"""

from __future__ import annotations

import argparse
import datetime
import io
import logging
import string
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

log = logging.getLogger(__name__)

LANGUAGES = ("en", "es", "pt", "ru", "de")
SOURCE_LANGUAGE = "en"
DOMAIN = "messages"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
# The packages whose marked texts are extracted, relative to the project's root.
SOURCE_PACKAGES = ("bot", "adapters")
# Babel keywords: N_ marks a text where it is defined, _ translates one where it is used.
KEYWORDS: Mapping[str, None] = MappingProxyType({"N_": None, "_": None})
PROJECT = "reshare"
TEMPLATE_HEADER = (
    "# The texts Reshare's users see, from N_(...) and _(...) in bot/ and adapters/.\n"
    "# Written by `python -m bot.i18n extract`: do not edit by hand.\n#"
)
CATALOGUE_HEADER = (
    "# The texts Reshare's users see, in {language}.\n"
    "# `python -m bot.i18n extract` adds new texts (empty) and marks changed ones fuzzy:\n"
    "# translate those, keeping {{placeholders}} and links as they are.\n#"
)


def N_(text: str) -> str:
    """Marks `text` as user-facing, for extraction; returns it unchanged."""
    return text


def language_of(code: str | None) -> str:
    """The catalogue language for a platform's language code ("pt-BR", "de_AT", "es-419"),
    English for none or one without a catalogue."""
    if not code:
        return SOURCE_LANGUAGE
    primary = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else SOURCE_LANGUAGE


def placeholders(text: str) -> frozenset[str]:
    """The named `{fields}` of a format template."""
    try:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)
    except ValueError:
        return frozenset({"<malformed>"})


def po_path(directory: Path, language: str) -> Path:
    return directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def pot_path(directory: Path) -> Path:
    return directory / f"{DOMAIN}.pot"


@dataclass(frozen=True, slots=True)
class Catalogues:
    """The translations of every language, read once at start-up; immutable after."""

    msgids: frozenset[str]
    translations: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls, directory: Path | None = None) -> Catalogues:
        """Read the template and each language's .po file from `directory` (the package's
        locales by default); fuzzy and empty entries count as untranslated."""
        from babel.messages.pofile import read_po

        root = directory if directory is not None else LOCALES_DIR
        with pot_path(root).open("rb") as file:
            template = read_po(file, domain=DOMAIN)
        msgids = frozenset(_ids(template))
        translations: dict[str, Mapping[str, str]] = {}
        for language in LANGUAGES:
            path = po_path(root, language)
            if language == SOURCE_LANGUAGE or not path.exists():
                translations[language] = MappingProxyType({})
                continue
            with path.open("rb") as file:
                catalog = read_po(file, locale=language, domain=DOMAIN)
            translations[language] = MappingProxyType(
                {
                    message.id: message.string
                    for message in catalog
                    if isinstance(message.id, str)
                    and message.id
                    and isinstance(message.string, str)
                    and message.string
                    and not message.fuzzy
                }
            )
        return cls(msgids=msgids, translations=MappingProxyType(translations))

    def text(self, language: str | None, msgid: str, **fields: object) -> str:
        """`msgid` in `language` (a catalogue language or a platform's code), English when it
        has no translation; then `fields` filled into its `{placeholders}`."""
        translated = self.translations.get(language_of(language), {}).get(msgid, msgid)
        if not fields:
            return translated
        try:
            return translated.format(**fields)
        except (KeyError, IndexError, ValueError) as err:
            log.warning("translation of %r does not format (%r): English instead", msgid, err)
            return msgid.format(**fields)

    def missing(self, language: str) -> list[str]:
        """The template's texts that `language` does not translate (none for English)."""
        if language == SOURCE_LANGUAGE:
            return []
        have = self.translations.get(language, {})
        return sorted(msgid for msgid in self.msgids if msgid not in have)


def _ids(catalog: Catalog) -> Iterable[str]:
    for message in catalog:
        if isinstance(message.id, str) and message.id:
            yield message.id


def extract_template(root: Path, packages: Sequence[str] = SOURCE_PACKAGES) -> Catalog:
    """The texts marked with N_(...) or _(...) in `packages` under `root`, as a template."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    template = Catalog(domain=DOMAIN, project=PROJECT, header_comment=TEMPLATE_HEADER, fuzzy=False)
    for package in packages:
        found = extract_from_dir(
            root / package,
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=("Translators:",),
            strip_comment_tags=True,
        )
        for filename, lineno, message, comments, context in found:
            if not isinstance(message, str):
                continue  # plural forms: none are marked
            template.add(
                message,
                None,
                [(f"{package}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return template


def extract(root: Path, directory: Path | None = None) -> list[Path]:
    """Write the template of `root`'s texts and bring every language's .po file up to it,
    keeping their translations; returns the files written."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    locales = directory if directory is not None else root / "bot" / "locales"
    template = extract_template(root)
    pot = pot_path(locales)
    # The date of the first extraction stays, so that a run that finds nothing new changes
    # no file.
    template.creation_date = _creation_date(pot) or datetime.datetime.now(datetime.UTC)
    written = [_write(pot, template)]
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        path = po_path(locales, language)
        if path.exists():
            with path.open("rb") as file:
                catalog = read_po(file, locale=language, domain=DOMAIN)
        else:
            catalog = Catalog(
                locale=language,
                domain=DOMAIN,
                project=PROJECT,
                header_comment=CATALOGUE_HEADER.format(language=_language_name(language)),
                fuzzy=False,
            )
        catalog.update(template)
        written.append(_write(path, catalog))
    return written


def _language_name(language: str) -> str:
    from babel import Locale

    return Locale.parse(language).english_name or language


def _creation_date(pot: Path) -> datetime.datetime | None:
    from babel.messages.pofile import read_po

    if not pot.exists():
        return None
    with pot.open("rb") as file:
        date = read_po(file).creation_date
    return date if isinstance(date, datetime.datetime) else None


def _write(path: Path, catalog: Catalog) -> Path:
    from babel.messages.pofile import write_po

    buffer = io.BytesIO()
    # Files without line numbers: a line moved in the code changes no catalogue.
    write_po(buffer, catalog, width=100, ignore_obsolete=True, include_lineno=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != buffer.getvalue():
        path.write_bytes(buffer.getvalue())
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.i18n", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    extracting = commands.add_parser(
        "extract", help="write bot/locales/messages.pot and update the .po files"
    )
    extracting.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the project's root (holding bot/ and adapters/)",
    )
    args = parser.parse_args(argv)
    for path in extract(args.root):
        print(path)
    catalogues = Catalogues.load(args.root / "bot" / "locales")
    for language in LANGUAGES:
        if missing := catalogues.missing(language):
            print(f"{language}: {len(missing)} to translate", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
