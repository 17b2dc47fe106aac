"""The MJML 4 component set, for validating the MJML we generate.

mjml-python (MRML) does not validate: unknown tags are copied into the output and
unknown attributes dropped without a word. This table, taken from the MJML
documentation, lets ``newsletter check`` catch both before a subscriber does.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

_PADDING = {"padding", "padding-top", "padding-right", "padding-bottom", "padding-left"}
_BORDER = {"border", "border-top", "border-right", "border-bottom", "border-left"}
_FONT = {
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "line-height",
    "letter-spacing",
    "color",
    "text-decoration",
    "text-transform",
    "align",
}
_BACKGROUND = {
    "background-color",
    "background-url",
    "background-repeat",
    "background-size",
    "background-position",
    "background-position-x",
    "background-position-y",
}
_COMMON = {"css-class", "mj-class"}
# The icons an accordion and each of its elements may set.
_ACCORDION_ICON = {
    "icon-align",
    "icon-height",
    "icon-position",
    "icon-unwrapped-alt",
    "icon-unwrapped-url",
    "icon-width",
    "icon-wrapped-alt",
    "icon-wrapped-url",
}

ATTRIBUTES: dict[str, set[str]] = {
    "mjml": {"lang", "dir", "owa"},
    "mj-head": set(),
    "mj-body": {"width", "background-color", "css-class"},
    "mj-attributes": set(),
    "mj-all": set(),  # any attribute: it applies to every component
    "mj-class": {"name"},  # plus any component attribute
    "mj-breakpoint": {"width"},
    "mj-font": {"name", "href"},
    "mj-html-attributes": set(),
    "mj-selector": {"path"},
    "mj-html-attribute": {"name"},
    "mj-preview": set(),
    "mj-title": set(),
    "mj-style": {"inline"},
    "mj-raw": {"position"},
    "mj-include": {"path", "type", "css-inline"},
    "mj-button": _COMMON
    | _PADDING
    | _BORDER
    | _FONT
    | {
        "background-color",
        "border-radius",
        "container-background-color",
        "height",
        "href",
        "inner-padding",
        "name",
        "rel",
        "target",
        "text-align",
        "title",
        "vertical-align",
        "width",
    },
    "mj-column": _COMMON
    | _PADDING
    | _BORDER
    | {
        "background-color",
        "inner-background-color",
        "border-radius",
        "inner-border",
        "inner-border-top",
        "inner-border-right",
        "inner-border-bottom",
        "inner-border-left",
        "inner-border-radius",
        "width",
        "vertical-align",
        "direction",
    },
    "mj-divider": _COMMON
    | _PADDING
    | {
        "border-color",
        "border-style",
        "border-width",
        "container-background-color",
        "width",
        "align",
    },
    "mj-group": _COMMON | {"width", "vertical-align", "background-color", "direction"},
    "mj-hero": _COMMON
    | _PADDING
    | {
        "background-color",
        "background-height",
        "background-position",
        "background-url",
        "background-width",
        "border-radius",
        "height",
        "mode",
        "vertical-align",
        "inner-background-color",
        "inner-padding",
        "inner-padding-top",
        "inner-padding-right",
        "inner-padding-bottom",
        "inner-padding-left",
    },
    "mj-image": _COMMON
    | _PADDING
    | _BORDER
    | {
        "align",
        "alt",
        "border-radius",
        "container-background-color",
        "fluid-on-mobile",
        "height",
        "href",
        "name",
        "rel",
        "sizes",
        "src",
        "srcset",
        "target",
        "title",
        "usemap",
        "width",
    },
    "mj-navbar": _COMMON
    | {
        "align",
        "base-url",
        "hamburger",
        "ico-align",
        "ico-close",
        "ico-color",
        "ico-font-family",
        "ico-font-size",
        "ico-line-height",
        "ico-open",
        "ico-padding",
        "ico-padding-top",
        "ico-padding-right",
        "ico-padding-bottom",
        "ico-padding-left",
        "ico-text-decoration",
        "ico-text-transform",
    },
    "mj-navbar-link": _COMMON | _PADDING | _FONT | {"href", "name", "rel", "target"},
    "mj-section": _COMMON
    | _PADDING
    | _BORDER
    | _BACKGROUND
    | {"border-radius", "direction", "full-width", "text-align"},
    "mj-wrapper": _COMMON
    | _PADDING
    | _BORDER
    | _BACKGROUND
    | {"border-radius", "full-width", "text-align"},
    "mj-social": _COMMON
    | _PADDING
    | _FONT
    | {
        "border-radius",
        "container-background-color",
        "icon-height",
        "icon-size",
        "inner-padding",
        "mode",
        "icon-padding",
        "text-padding",
    },
    "mj-social-element": _COMMON
    | _PADDING
    | _FONT
    | {
        "alt",
        "background-color",
        "border-radius",
        "href",
        "icon-height",
        "icon-size",
        "name",
        "icon-padding",
        "text-padding",
        "rel",
        "sizes",
        "src",
        "srcset",
        "target",
        "title",
        "vertical-align",
        "icon-position",
    },
    "mj-spacer": _COMMON | _PADDING | {"container-background-color", "height"},
    "mj-table": _COMMON
    | _PADDING
    | _FONT
    | {
        "border",
        "cellpadding",
        "cellspacing",
        "container-background-color",
        "role",
        "table-layout",
        "width",
    },
    "mj-text": _COMMON
    | _PADDING
    | _FONT
    | {"container-background-color", "height", "vertical-align"},
    "mj-accordion": _COMMON
    | _PADDING
    | _ACCORDION_ICON
    | {"border", "container-background-color", "font-family"},
    "mj-accordion-element": _COMMON
    | _ACCORDION_ICON
    | {"background-color", "border", "font-family"},
    "mj-accordion-title": _COMMON
    | _PADDING
    | {"background-color", "color", "font-size", "font-family"},
    "mj-accordion-text": _COMMON
    | _PADDING
    | {"background-color", "color", "font-size", "font-family", "line-height", "letter-spacing"},
    "mj-carousel": _COMMON
    | {
        "align",
        "border-radius",
        "container-background-color",
        "icon-width",
        "left-icon",
        "right-icon",
        "thumbnails",
        "tb-border",
        "tb-border-radius",
        "tb-hover-border-color",
        "tb-selected-border-color",
        "tb-width",
    },
    "mj-carousel-image": _COMMON
    | {
        "alt",
        "href",
        "rel",
        "src",
        "target",
        "thumbnails-src",
        "title",
        "border-radius",
        "tb-border",
        "tb-border-radius",
    },
}

# Components whose content is HTML (or text), not more MJML.
ENDING_TAGS = {
    "mj-text",
    "mj-button",
    "mj-raw",
    "mj-table",
    "mj-navbar-link",
    "mj-social-element",
    "mj-accordion-title",
    "mj-accordion-text",
    "mj-style",
    "mj-title",
    "mj-preview",
    "mj-carousel-image",
}
_PADDING_LIKE = _PADDING | {"inner-padding", "icon-padding", "text-padding"}


def problems(source: str) -> Iterator[tuple[int, str]]:
    """Yield (line, message) for each tag or attribute outside the MJML component set."""
    checker = _Checker()
    checker.feed(source)
    checker.close()
    yield from checker.found


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs)
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if any(open_tag in ENDING_TAGS for open_tag in self.stack):
            return  # HTML content of mj-text and friends: not MJML's to judge
        line = self.getpos()[0]
        allowed = ATTRIBUTES.get(tag)
        if allowed is None:
            self.found.append((line, f"<{tag}> is not an MJML component"))
            return
        any_attribute = tag in ("mj-all", "mj-class")
        for name, value in attrs:
            if not any_attribute and name not in allowed:
                self.found.append((line, f"<{tag}> has no attribute {name!r}"))
            if name in _PADDING_LIKE and value and _has_unitless_zero(value):
                self.found.append(
                    (
                        line,
                        f"<{tag} {name}={value!r}>: write 0px, not 0 (mjml-python "
                        "computes wrong image widths from a unitless 0)",
                    )
                )


def _has_unitless_zero(value: str) -> bool:
    return any(part == "0" for part in value.split())
