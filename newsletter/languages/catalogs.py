"""The shipped catalogs, the editor's ``strings:`` over them, and the Jinja side.

Translations are text, never trusted HTML: in an autoescaping template the translated
string is escaped before the ``{% trans %}`` variables go in (themselves escaped unless
they are already markup), so neither a catalog nor ``strings:`` can add a tag.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import escape

from newsletter.errors import ConfigError

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "newsletter"
# English is the source language: its "catalog" is the message ids themselves.
SHIPPED = ("ar", "de", "en", "es", "fr", "it", "nl", "pt")
# Languages written right to left (the shipped one and two more an editor may bring).
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur", "ps", "yi"})

_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
Overrides = Mapping[str, "str | Sequence[str]"]


def N_(message: str) -> str:
    """Marks ``message`` for the catalog where it is defined; translated where shown."""
    return message


def base_language(code: str) -> str:
    """``pt-BR`` -> ``pt``: the part that picks the catalog."""
    return code.replace("_", "-").split("-")[0].lower()


def is_rtl(code: str) -> bool:
    return base_language(code) in RTL_LANGUAGES


class Catalog:
    """One language's messages, with the editor's overrides first."""

    def __init__(
        self,
        language: str,
        translations: gettext_module.NullTranslations,
        overrides: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.language = language
        self.rtl = is_rtl(language)
        self.direction = "rtl" if self.rtl else "ltr"
        self._translations = translations
        self._overrides = dict(overrides or {})

    @functools.cached_property
    def callables(self) -> dict[str, Callable[..., Any]]:
        """:func:`jinja_callables` of this catalog, made once."""
        return jinja_callables(self)

    def gettext(self, message: str) -> str:
        override = self._overrides.get(message)
        if override is not None:
            return override[0]
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        override = self._overrides.get(singular)
        if override is not None:
            return override[0] if count == 1 or len(override) == 1 else override[1]
        return self._translations.ngettext(singular, plural, count)

    def pgettext(self, context: str, message: str) -> str:
        override = self._overrides.get(f"{context}\x04{message}")
        if override is not None:
            return override[0]
        return self._translations.pgettext(context, message)


def jinja_callables(catalog: Catalog) -> dict[str, Callable[..., Any]]:
    """``gettext``, ``ngettext``, ``pgettext`` and ``_`` for a template's context or
    globals, in the new style (:func:`i18n_environment`: the callables fill in the
    ``{% trans %}`` variables): escaped markup where the template autoescapes, plain text
    where it does not (the plain-text mail)."""

    def text_or_markup(eval_ctx: EvalContext, value: str) -> str:
        return escape(value) if eval_ctx.autoescape else value

    @pass_eval_context
    def gettext(eval_ctx: EvalContext, message: str, **variables: Any) -> str:
        return text_or_markup(eval_ctx, catalog.gettext(message)) % variables

    @pass_eval_context
    def ngettext(
        eval_ctx: EvalContext, singular: str, plural: str, count: int, **variables: Any
    ) -> str:
        return text_or_markup(eval_ctx, catalog.ngettext(singular, plural, count)) % (
            {"num": count} | variables
        )

    @pass_eval_context
    def pgettext(eval_ctx: EvalContext, context: str, message: str, **variables: Any) -> str:
        return text_or_markup(eval_ctx, catalog.pgettext(context, message)) % variables

    return {"gettext": gettext, "ngettext": ngettext, "pgettext": pgettext, "_": gettext}


def i18n_environment(environment: Environment) -> None:
    """Load ``jinja2.ext.i18n`` into ``environment`` in the new style, with whitespace in
    ``{% trans %}`` blocks collapsed (as ``babel.cfg`` extracts them); the callables come
    per render (:func:`jinja_callables` in the context) or as globals."""
    environment.add_extension("jinja2.ext.i18n")
    environment.newstyle_gettext = True  # type: ignore[attr-defined]
    environment.policies["ext.i18n.trimmed"] = True


@functools.cache
def _shipped_translations(language: str) -> gettext_module.NullTranslations:
    if language == "en":
        return gettext_module.NullTranslations()
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with path.open("rb") as file:
        return gettext_module.GNUTranslations(file)


@functools.lru_cache(maxsize=1)
def message_ids() -> frozenset[str]:
    """Every message id of the catalogs (``context\\x04id`` for messages with a context)."""
    # The German catalog holds every id (the completeness test keeps it so); its
    # compiled form is read without Babel.
    translations = _shipped_translations("de")
    ids: set[str] = set()
    for key in translations._catalog:  # type: ignore[attr-defined]
        msgid = key[0] if isinstance(key, tuple) else key
        if msgid:
            ids.add(msgid)
    return frozenset(ids)


def catalog_for(
    language: str,
    strings: Overrides | None = None,
    *,
    where: str = "newsletter.yaml",
    key: str = "language",
) -> Catalog:
    """The catalog for ``language`` (``de``, ``pt-BR``, ...) with ``strings`` over it.

    A language we do not ship is accepted when ``strings`` gives every message; else one
    error lists the shipped languages and points at ``strings:``.
    """
    return _catalog(language, _frozen(strings or {}), where, key)


def _frozen(strings: Overrides) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        sorted(
            (key, (value,) if isinstance(value, str) else tuple(value))
            for key, value in strings.items()
        )
    )


@functools.lru_cache(maxsize=32)
def _catalog(
    language: str, strings: tuple[tuple[str, tuple[str, ...]], ...], where: str, key: str
) -> Catalog:
    overrides = _checked_overrides(dict(strings), where)
    base = base_language(language)
    if base in SHIPPED:
        return Catalog(language, _shipped_translations(base), overrides)
    missing = sorted(message_ids() - overrides.keys())
    shipped = ", ".join(SHIPPED)
    if not strings:
        raise ConfigError(
            f"{where}: {key}: {language!r} has no shipped catalog (shipped: {shipped}); "
            "use one of them, or give every message in your language under strings: "
            "(docs/languages.md)"
        )
    if missing:
        raise ConfigError(
            f"{where}: {key}: {language!r} has no shipped catalog (shipped: {shipped}), "
            f"so strings: must give every message; {len(missing)} missing, the first "
            f"{missing[0]!r} (the list: newsletter/languages/newsletter.pot)"
        )
    return Catalog(language, gettext_module.NullTranslations(), overrides)


def _checked_overrides(
    strings: dict[str, tuple[str, ...]], where: str
) -> dict[str, tuple[str, ...]]:
    """``strings:`` keyed by message id (``context|text`` for a message with a context),
    each refused unless the catalog has it and it keeps to the message's placeholders."""
    checked: dict[str, tuple[str, ...]] = {}
    known = message_ids() if strings else frozenset()
    for key, value in strings.items():
        msgid = key.replace("|", "\x04", 1) if key not in known and "|" in key else key
        if msgid not in known:
            raise ConfigError(
                f"{where}: strings: {key!r} is not a message of the catalog; copy the "
                "English text exactly as newsletter/languages/newsletter.pot has it "
                "(docs/languages.md)"
            )
        allowed = set(_PLACEHOLDER.findall(msgid.split("\x04")[-1]))
        for form in value:
            unknown = set(_PLACEHOLDER.findall(form)) - allowed - {"num"}
            if unknown:
                raise ConfigError(
                    f"{where}: strings: {key!r}: placeholder %({sorted(unknown)[0]})s is not "
                    f"in the message; use only {_placeholder_list(allowed)}"
                )
            if "%" in _PLACEHOLDER.sub("", form).replace("%%", ""):
                raise ConfigError(
                    f"{where}: strings: {key!r}: a lone % sign; write %% for a percent sign"
                )
        checked[msgid] = value
    return checked


def _placeholder_list(names: set[str]) -> str:
    return ", ".join(f"%({name})s" for name in sorted(names)) or "no placeholders"
