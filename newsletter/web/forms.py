"""Reading the browser forms: what a visitor typed, cleaned, or a message saying why not."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from werkzeug.datastructures import MultiDict

from newsletter.config import Config
from newsletter.languages import N_

NAME_MAX = 100
EMAIL_MAX = 254  # RFC 5321's limit on a forward path
TOKEN_MAX = 300  # a signed token in a link (/u/, /p/, /confirm/): real ones are under 100
HONEYPOT_FIELD = "website"  # hidden from people; bots fill in every field they see


@dataclass
class FormResult:
    email: str = ""
    name: str = ""
    topics: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def read_email(form: MultiDict[str, str], result: FormResult) -> None:
    typed = form.get("email", "").strip()
    result.email = typed
    if not typed:
        result.errors["email"] = N_("Enter your email address.")
        return
    if len(typed) > EMAIL_MAX:
        result.errors["email"] = N_("This address is too long.")
        return
    try:
        result.email = validate_email(typed, check_deliverability=False).normalized
    except EmailNotValidError:
        result.errors["email"] = N_("Enter an email address like name@example.org.")


def read_name(form: MultiDict[str, str], result: FormResult) -> None:
    # Control and format characters have no business in a name and can disguise it.
    typed = "".join(ch for ch in form.get("name", "") if unicodedata.category(ch)[0] != "C")
    result.name = re.sub(r"\s+", " ", typed).strip()
    if len(result.name) > NAME_MAX:
        result.errors["name"] = N_("Use at most 100 characters.")  # NAME_MAX


def read_topics(form: MultiDict[str, str], result: FormResult, config: Config) -> None:
    chosen = set(form.getlist("topics"))
    result.topics = tuple(topic for topic in config.topic_ids if topic in chosen)
    if config.topics and not result.topics:
        result.errors["topics"] = N_("Choose at least one topic.")


def signup_form(form: MultiDict[str, str], config: Config) -> FormResult:
    result = FormResult()
    read_email(form, result)
    read_name(form, result)
    read_topics(form, result, config)
    if form.get("consent") != "yes":
        result.errors["consent"] = N_("Tick the box to agree to receive the newsletter.")
    return result


def preferences_form(form: MultiDict[str, str], config: Config) -> FormResult:
    result = FormResult()
    read_name(form, result)
    read_topics(form, result, config)
    if "topics" in result.errors:
        result.errors["topics"] = N_(
            "Choose at least one topic, or unsubscribe from everything below."
        )
    return result


def manage_form(form: MultiDict[str, str]) -> FormResult:
    result = FormResult()
    read_email(form, result)
    return result


def is_bot(form: MultiDict[str, str]) -> bool:
    return bool(form.get(HONEYPOT_FIELD, "").strip())
