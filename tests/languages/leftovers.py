"""What a page in another language must not show: the catalog's English words."""

from __future__ import annotations

import html
import re

from newsletter.languages import catalog_for, message_ids

_PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def english_leftovers(page: str, language: str) -> list[str]:
    """English fragments of catalog messages (4+ characters between placeholders) that
    ``page`` shows although ``language``'s catalog says them differently."""
    catalog = catalog_for(language)
    shown = html.unescape(page)
    found = []
    for msgid in sorted(message_ids()):
        context, _, source = msgid.rpartition("\x04")
        translated = catalog.pgettext(context, source) if context else catalog.gettext(source)
        for fragment in _PLACEHOLDER.split(source):
            fragment = fragment.strip(" .,:;?!()\"'[]")
            if len(fragment) < 4 or fragment in translated:
                continue
            if re.search(r"(?<![\w-])" + re.escape(fragment) + r"(?![\w-])", shown):
                found.append(fragment)
    return found
