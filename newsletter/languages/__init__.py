"""Every word a subscriber sees, in the newsletter's language.

The messages are gettext catalogs managed with Babel (``docs/languages.md``): the
English source strings are the message ids, one ``newsletter.po`` per shipped language
under ``locale/``, compiled to the ``newsletter.mo`` beside it (committed; a test keeps
each one in step with its ``.po``). :func:`catalog_for` gives the :class:`Catalog` of a
language with the editor's ``strings:`` laid over it; the templates reach it through
``gettext`` / ``{% trans %}`` (:func:`jinja_callables`), Python code through
``catalog.gettext``. Dates go through :func:`long_date` / :func:`short_date`, counts
through :func:`count` (Babel's CLDR data).

A catalog file is read only when its language is first asked for, so a command that
renders nothing loads none.
"""

from __future__ import annotations

from newsletter.languages.catalogs import (
    N_,
    RTL_LANGUAGES,
    SHIPPED,
    Catalog,
    catalog_for,
    i18n_environment,
    is_rtl,
    jinja_callables,
    message_ids,
)
from newsletter.languages.dates import count, long_date, short_date

__all__ = [
    "N_",
    "RTL_LANGUAGES",
    "SHIPPED",
    "Catalog",
    "catalog_for",
    "count",
    "i18n_environment",
    "is_rtl",
    "jinja_callables",
    "long_date",
    "message_ids",
    "short_date",
]
