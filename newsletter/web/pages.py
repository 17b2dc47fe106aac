"""Rendering pages: the shared template context, filters, and :func:`page`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, make_response, render_template
from markupsafe import Markup

from newsletter.languages import i18n_environment
from newsletter.render.compile import wrap_text
from newsletter.web.context import services
from newsletter.web.security import style_hash

TEMPLATES_DIR = Path(__file__).parent / "templates"


def page(template: str, *, status: int = 200, **context: Any) -> Response:
    response = make_response(render_template(template, **context), status)
    response.mimetype = "text/html"
    return response


def readable_on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (#rgb or #rrggbb).

    Keeps button labels legible (WCAG contrast) whatever brand colour the editor picks.
    """
    hex_digits = background.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(digit * 2 for digit in hex_digits)
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    contrast_with_white = 1.05 / (luminance + 0.05)
    contrast_with_black = (luminance + 0.05) / 0.05
    return "#ffffff" if contrast_with_white >= contrast_with_black else "#000000"


def css_value(value: str) -> str:
    """A config value (a font list) made safe inside a <style> block: it cannot end the
    declaration, the rule or the element."""
    return re.sub(r"[<>{};\\\n\r]", "", value)


def _site_context() -> dict[str, Any]:
    config = services().config
    return {
        "config": config,
        "brand": config.brand,
        "has_logo": bool(config.brand.logo),
        "consent_text": services().consent_text,
        "stylesheet": Markup(services().stylesheet),
    }


def init_pages(app: Flask) -> None:
    app.context_processor(_site_context)
    catalog = app.extensions["newsletter"].catalog
    i18n_environment(app.jinja_env)
    app.jinja_env.globals.update(
        catalog.callables, language=catalog.language, direction=catalog.direction
    )
    app.jinja_env.filters["wrap"] = wrap_text
    app.jinja_env.filters["readable_on"] = readable_on
    app.jinja_env.filters["css_value"] = css_value
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.register_error_handler(Answer, lambda answer: answer.response)
    # The CSS depends only on the config: render it once, and allow it by its hash.
    with app.app_context():
        site = services()
        site.stylesheet = render_template("style.css").strip()
        site.style_source = style_hash(site.stylesheet)


class Answer(Exception):
    """Stops a view and answers with this page instead (an expired link, say)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response
