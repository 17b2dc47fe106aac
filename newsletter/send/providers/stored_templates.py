"""A Postmark template for a campaign's content, so each message is only its reader's values.

Postmark's ``/email/batch`` has no substitutions: each of a request's 500 messages would
carry the whole personalised issue. Instead the provider makes one template of the
content (``POST /templates``, an alias of its own per provider and content) and sends
``/email/batchWithTemplates``, each message a ``TemplateModel`` of the markers' values;
the template is deleted when the provider closes (a server holds at most 100).

The markers become Mustachio's triple braces, which insert a value as it is: HTML values
are escaped here, as for every other provider (``h_<field>``), text values are not
(``t_<field>``), so Postmark's own escaping never applies. Content that already holds
``{{`` or ``}}`` (a code sample, say) would be read as Mustachio by Postmark: it goes as
full messages instead, as does confirmation mail (one message, not worth a template).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape

from newsletter.render.personalize import split_markers
from newsletter.send.providers import Content

MUSTACHIO = ("{{", "}}")


@dataclass(frozen=True)
class Template:
    alias: str
    html_fields: tuple[str, ...]
    text_fields: tuple[str, ...]

    def model(self, values: Mapping[str, str]) -> dict[str, str]:
        """One reader's ``TemplateModel``: only the fields the content uses."""
        model = {key: escape(values[name], quote=True) for key, name in self._html_keys}
        model.update((key, values[name]) for key, name in self._text_keys)
        return model

    # The variables' names, made once: a model is made for every reader.

    @functools.cached_property
    def _html_keys(self) -> tuple[tuple[str, str], ...]:
        return tuple((f"h_{name}", name) for name in self.html_fields)

    @functools.cached_property
    def _text_keys(self) -> tuple[tuple[str, str], ...]:
        return tuple((f"t_{name}", name) for name in self.text_fields)


def templatable(content: Content) -> bool:
    """Whether ``content`` can go as a template without Postmark misreading any of it."""
    if content.transactional:
        return False
    parts = (content.subject, content.html, content.text)
    return not any(brace in part for part in parts for brace in MUSTACHIO)


def template_body(content: Content, alias: str) -> dict[str, str]:
    """The ``POST /templates`` body for ``content``."""
    return {
        "Name": f"newsletter: {content.subject}"[:100],
        "Alias": alias,
        "TemplateType": "Standard",
        "Subject": content.subject,
        "HtmlBody": _mustachio(split_markers(content.html), "h"),
        "TextBody": _mustachio(split_markers(content.text), "t"),
    }


def new_alias(content: Content) -> str:
    """An alias of this content and this provider only (letters, digits and ``-``, a
    letter first): no other sender deletes it, and a rerun makes its own."""
    digest = hashlib.sha256(
        "\0".join((content.subject, content.html, content.text)).encode()
    ).hexdigest()
    return f"newsletter-{digest[:16]}-{secrets.token_hex(4)}"


def template_for(content: Content, alias: str) -> Template:
    return Template(
        alias, _fields(split_markers(content.html)), _fields(split_markers(content.text))
    )


def _fields(parts: list[str]) -> tuple[str, ...]:
    return tuple(sorted(set(parts[1::2])))


def _mustachio(parts: Iterable[str], prefix: str) -> str:
    return "".join(
        piece if index % 2 == 0 else "{{{ " + f"{prefix}_{piece}" + " }}}"
        for index, piece in enumerate(parts)
    )
