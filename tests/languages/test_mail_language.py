"""An issue in the reader's language: every word of the theme, the date, the greeting."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
import yaml

from newsletter.config import Config, load_config
from newsletter.errors import ConfigError
from newsletter.languages import SHIPPED, message_ids
from newsletter.models import Personalization
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from newsletter.send.copies import campaign_content
from newsletter.send.providers import Recipient, local_message
from tests.languages.leftovers import english_leftovers

# German words in an issue, so that only the theme could bring English in.
GERMAN_ISSUE = """---
title: Stammzellen in der Muttermilch
date: 2026-11-26
topics: [research]
author: {name: Dr. Anna Berg, bio: Sie forscht zu Muttermilch.}
cta: {text: Zum Artikel, url: "https://example.org/artikel"}
---
Was die Forschung über Muttermilch weiß.

![Eine Mutter stillt ihr Kind](images/logo.png "Foto von Anna")
"""


def with_settings(project: Path, **settings: object) -> Config:
    path = project / "newsletter.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(settings)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


def render(
    project: Path, config: Config, source: str = GERMAN_ISSUE, name: str = ""
) -> tuple[str, str]:
    path = project / "issues" / "2026-11-26-stammzellen.md"
    path.write_text(source, encoding="utf-8")
    issue = read_issue(path, topics=config.topic_ids)
    recipient = Personalization(email="anna@example.org", name=name)
    return Personalizer(compile_issue(issue, config)).render(recipient)


def test_a_german_newsletter_speaks_german_in_both_parts(project: Path) -> None:
    config = with_settings(project, language="de")

    html, text = render(project, config)

    for part in (html, " ".join(text.split())):
        assert "26. November 2026" in part
        assert "von Dr. Anna Berg" in part
        assert "Hallo zusammen," in part  # no name: the language's own fallback
        assert "Über den Autor".upper() in part.upper()
        assert (
            "Sie erhalten diese E-Mail, weil anna@example.org Breastfeeding World "
            "abonniert hat (Research)." in part
        )
    assert '<html lang="de" dir="ltr"' in html
    assert ">Abmelden</a>" in html and ">Einstellungen verwalten</a>" in html
    assert "Abmelden: " in text and "Im Browser ansehen: " in text
    assert "[Bild: Eine Mutter stillt ihr Kind] Foto von Anna" in text
    assert english_leftovers(html, "de") == []
    assert english_leftovers(text, "de") == []


def test_a_reader_with_a_name_is_greeted_by_it(project: Path) -> None:
    config = with_settings(project, language="de")
    html, text = render(project, config, name="Dr Jane Smith")
    assert "Hallo Jane," in html and "Hallo Jane," in text


def test_english_stays_as_it_was(project: Path, config: Config) -> None:
    html, text = render(project, config)
    assert "26 November 2026" in text and "Hi there," in text
    assert "Unsubscribe: " in text and ">Manage preferences</a>" in html
    # What the German test above would have caught, had the theme stayed English:
    assert {"Unsubscribe", "View in your browser"} <= set(english_leftovers(html, "de"))


def test_an_issue_can_be_in_another_language_than_the_newsletter(
    project: Path, config: Config
) -> None:
    source = GERMAN_ISSUE.replace("date: 2026-11-26\n", "date: 2026-11-26\nlanguage: de\n")
    html, text = render(project, config, source)
    assert '<html lang="de"' in html and "26. November 2026" in text
    assert "Abmelden: " in text


def test_strings_override_a_message_as_text_never_as_markup(project: Path) -> None:
    config = with_settings(
        project,
        language="de",
        strings={
            "Unsubscribe": "Austragen <b>sofort</b>",
            "greeting without a name|there": "ihr Lieben",
        },
    )
    html, text = render(project, config)
    assert ">Austragen &lt;b&gt;sofort&lt;/b&gt;</a>" in html
    assert "Austragen <b>sofort</b>: " in text
    assert "Hallo ihr Lieben," in text


def test_an_unknown_message_in_strings_names_the_key(project: Path) -> None:
    config = with_settings(project, strings={"Unsubscribe now": "Leave"})
    with pytest.raises(ConfigError) as error:
        render(project, config)
    assert str(error.value) == (
        "newsletter.yaml: strings: 'Unsubscribe now' is not a message of the catalog; copy "
        "the English text exactly as newsletter/languages/newsletter.pot has it "
        "(docs/languages.md)"
    )


def test_an_override_may_not_invent_a_placeholder(project: Path) -> None:
    config = with_settings(project, strings={"by %(name)s": "by %(author)s"})
    with pytest.raises(
        ConfigError, match=r"placeholder %\(author\)s is not in the message; use only %\(name\)s"
    ):
        render(project, config)


def test_an_unknown_language_is_one_error_listing_the_shipped_ones(project: Path) -> None:
    config = with_settings(project, language="xx")
    with pytest.raises(ConfigError) as error:
        render(project, config)
    message = str(error.value)
    assert message.startswith("newsletter.yaml: language: 'xx' has no shipped catalog (shipped: ")
    assert "de, en" in message and "strings:" in message


DATES = {
    "ar": "26 نوفمبر 2026",
    "de": "26. November 2026",
    "en": "26 November 2026",
    "es": "26 de noviembre de 2026",
    "fr": "26 novembre 2026",
    "it": "26 novembre 2026",
    "nl": "26 november 2026",
    "pt": "26 de novembro de 2026",
}


@pytest.mark.parametrize("language", SHIPPED)
def test_every_shipped_language_leaves_no_english_in_the_mail(project: Path, language: str) -> None:
    config = with_settings(project, language=language)

    html, text = render(project, config)

    assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}"' in html
    assert DATES[language] in text and DATES[language] in html
    if language != "en":
        assert english_leftovers(html, language) == []
        assert english_leftovers(text, language) == []


def test_a_campaign_greets_a_reader_without_a_name_in_the_issues_language(
    project: Path,
) -> None:
    config = with_settings(project, language="de")
    path = project / "issues" / "2026-11-26-stammzellen.md"
    path.write_text(GERMAN_ISSUE, encoding="utf-8")
    content = campaign_content(
        config, compile_issue(read_issue(path, topics=config.topic_ids), config)
    )

    # Every provider takes a reader's values from the content (SendGrid, Mailgun and
    # Postmark send them as substitutions; outbox and SMTP fill them in here).
    assert content.values_for(Personalization(email="x@example.org"))["greeting_name"] == "zusammen"
    _, raw = local_message(content, Recipient(Personalization(email="x@example.org")))
    message = message_from_bytes(raw, policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hallo zusammen," in text


def test_a_language_we_do_not_ship_works_with_every_message_in_strings(project: Path) -> None:
    strings = {key.replace("\x04", "|"): "sv: " + key.split("\x04")[-1] for key in message_ids()}
    config = with_settings(project, language="sv", strings=strings)

    html, text = render(project, config)

    assert '<html lang="sv" dir="ltr"' in html
    assert "26 november 2026" in text  # Babel's Swedish
    assert "sv: Unsubscribe: " in text and "sv: Hi sv: there," in text

    del strings["Unsubscribe"]
    config = with_settings(project, language="sv", strings=strings)
    with pytest.raises(
        ConfigError,
        match=r"so strings: must give every message; 1 missing, the first 'Unsubscribe'",
    ):
        render(project, config)


def test_lists_are_joined_the_languages_way(project: Path) -> None:
    config = with_settings(project, language="ar")
    source = GERMAN_ISSUE.replace("topics: [research]", "topics: [research, stories]")
    html, text = render(project, config, source)
    assert "(Research، Photo stories)" in html and "(Research، Photo stories)" in text
