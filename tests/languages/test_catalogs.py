"""The shipped catalogs: complete, compiled, and in step with the code's messages."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from newsletter.languages import SHIPPED, catalog_for
from newsletter.languages.catalogs import LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
POT = LOCALE_DIR.parent / "newsletter.pot"
TRANSLATED = [language for language in SHIPPED if language != "en"]
_PLACEHOLDERS = re.compile(r"%\(\w+\)s|\{\w+\}")


def po_of(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "newsletter.po").open("rb") as file:
        return read_po(file)


def placeholders(text: str) -> list[str]:
    return sorted(_PLACEHOLDERS.findall(text))


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_and_none_is_fuzzy(language: str) -> None:
    catalog = po_of(language)
    ids = [message.id for message in catalog if message.id]
    untranslated = [
        message.id
        for message in catalog
        if message.id
        and (
            message.fuzzy
            or not message.string
            or (isinstance(message.string, tuple) and not all(message.string))
        )
    ]
    assert ids and untranslated == []
    with POT.open("rb") as file:
        template = {str(message.id) for message in read_po(file) if message.id}
    assert {str(message.id) for message in catalog if message.id} == template


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder(language: str) -> None:
    wrong = []
    for message in po_of(language):
        if not message.id:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = placeholders(sources[-1])
        for string in strings:
            found = placeholders(string)
            # A plural form may say its number in words ("einen Tag", "يومين").
            dropped = [expected[:i] + expected[i + 1 :] for i in range(len(expected))]
            if found != expected and not (len(sources) > 1 and found in dropped):
                wrong.append((message.id, string))
    assert wrong == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_shipped_mo_is_compiled_from_the_po(language: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, po_of(language), use_fuzzy=False)
    mo = LOCALE_DIR / language / "LC_MESSAGES" / "newsletter.mo"
    assert mo.read_bytes() == compiled.getvalue(), "run scripts/catalogs.py"


def test_the_template_holds_exactly_the_messages_the_code_has() -> None:
    options = {"trimmed": "true", "newstyle_gettext": "true"}
    method_map = [
        ("newsletter/web/**.py", "python"),
        ("newsletter/render/**.py", "python"),
        ("newsletter/site/**.py", "python"),
        ("newsletter/theme/**.j2", "jinja2"),
        ("newsletter/web/templates/**.html", "jinja2"),
        ("newsletter/web/templates/**.txt", "jinja2"),
    ]
    keywords = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "N_": None,
        "pgettext": ((1, "c"), 2),
    }
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT / "newsletter"),
        method_map=[
            (pattern.removeprefix("newsletter/"), method) for pattern, method in method_map
        ],
        options_map={
            pattern.removeprefix("newsletter/"): options
            for pattern, method in method_map
            if method == "jinja2"
        },
        keywords=keywords,
    ):
        found.add((context, message if isinstance(message, str) else message[0]))
    with POT.open("rb") as file:
        template = {
            (m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in read_po(file) if m.id
        }
    assert found == template, "run scripts/catalogs.py"


def test_a_count_agrees_with_its_noun_in_each_language() -> None:
    singular = "For your security these links work for %(days)s day."
    plural = "For your security these links work for %(days)s days."

    def said(language: str, days: int) -> str:
        return catalog_for(language).ngettext(singular, plural, days) % {"days": days}

    assert said("en", 1).endswith("for 1 day.") and said("en", 7).endswith("for 7 days.")
    assert said("de", 1).endswith("einen Tag lang.") and said("de", 7).endswith("7 Tage lang.")
    assert said("ar", 2).endswith("لمدة يومين.")
    assert said("ar", 7).endswith("لمدة 7 أيام.")
    assert said("ar", 30).endswith("لمدة 30 يومًا.")
    assert said("fr", 1).endswith("1 jour.") and said("fr", 7).endswith("7 jours.")
