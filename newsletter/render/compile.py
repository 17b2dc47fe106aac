"""Renderer: :class:`Issue` -> :class:`CompiledIssue`, once per issue.

Jinja renders the MJML template, mjml-python compiles it, css-inline inlines the
styles (keeping ``<style>`` blocks, which hold the media queries). The plain-text
part is rendered from the same issue with its own template. Per-recipient values
appear as markers; :mod:`newsletter.render.personalize` fills them in cheaply afterwards.

Templates are looked up in the project's ``templates/`` first, then in the bundled
theme, so an editor overrides one file without copying the rest.
"""

from __future__ import annotations

import datetime as dt
import functools
import textwrap
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import css_inline
import jinja2
import markupsafe
import mjml

from newsletter.config import Config
from newsletter.errors import IssueFileError, RenderError, TemplateError
from newsletter.languages import Catalog, catalog_for, i18n_environment, long_date
from newsletter.models import PERSONAL_FIELDS, CompiledIssue, Issue, ProcessedImage
from newsletter.render.colors import dark_accent
from newsletter.render.images import ImagePipeline, OutputNotWritable

THEME_DIR = Path(__file__).parent.parent / "theme"
HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"

_INLINER = css_inline.CSSInliner(
    keep_style_tags=True,  # the media queries (phones, dark mode) live in <style> blocks
    load_remote_stylesheets=False,  # never fetch web fonts while rendering
)


def marker(part: str, name: str) -> str:
    """The placeholder a recipient's value replaces; plain text that survives MJML and inlining."""
    return f"[[{part}:{name}]]"


class _Markers:
    """Template-side view of the recipient: every attribute renders as its marker."""

    def __init__(self, part: str) -> None:
        for name in PERSONAL_FIELDS:
            setattr(self, name, marker(part, name))


# One cache per kind of environment: Jinja keys compiled templates by file name and
# source only, and autoescaping is compiled in, so a template compiled for the text
# part must never be picked up by the HTML environment (its output would go unescaped).
_BYTECODE_CACHES = {
    text: jinja2.FileSystemBytecodeCache(pattern=f"__newsletter_{kind}_i18n_%s.cache")
    for text, kind in ((False, "html"), (True, "text"))
}


def template_environment(config: Config, *, text: bool = False) -> jinja2.Environment:
    return _environment(config.templates_dir, text)


@functools.lru_cache(maxsize=16)
def _environment(templates_dir: Path, text: bool) -> jinja2.Environment:
    # Cached: compiling the templates costs far more than rendering them. Jinja still
    # checks each file's modification time, so an edited template is picked up.
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(templates_dir), jinja2.FileSystemLoader(THEME_DIR)]
    )
    environment = jinja2.Environment(
        loader=loader,
        # Compiled templates are kept on disk (Jinja's own cache, in a private folder
        # under the temp dir, keyed by source checksum): a `newsletter build` process
        # then skips the template compile, the largest part of its start-up.
        bytecode_cache=_BYTECODE_CACHES[text],
        undefined=jinja2.StrictUndefined,
        autoescape=not text,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    i18n_environment(environment)
    environment.filters["longdate"] = _long_date
    environment.filters["wrap"] = wrap_text
    environment.filters["dark_accent"] = dark_accent
    return environment


@jinja2.pass_context
def _long_date(context: jinja2.runtime.Context, value: dt.date) -> str:
    return long_date(value, context.get("language", "en"))


def issue_catalog(config: Config, issue: Issue | None = None) -> Catalog:
    """The catalog for an issue: its front matter's ``language:``, else the config's."""
    if issue is not None and issue.language:
        return catalog_for(issue.language, config.strings, where=str(issue.path))
    return catalog_for(config.language, config.strings)


def language_context(catalog: Catalog) -> dict[str, Any]:
    """What every template needs to speak the language: ``gettext`` and friends,
    ``language`` (for ``lang`` and dates) and ``direction`` (``ltr`` or ``rtl``)."""
    return {
        "language": catalog.language,
        "direction": catalog.direction,
        **catalog.callables,
    }


def wrap_text(value: str, width: int = 72) -> str:
    return "\n".join(
        textwrap.fill(line, width=width, break_long_words=False, break_on_hyphens=False)
        for line in value.splitlines()
    )


CONTENT_WIDTH = 600  # CSS pixels: the body width of the theme


@functools.lru_cache(maxsize=8)
def _pipeline(root: Path) -> ImagePipeline:
    # One per project and process: its index is read once, not once per compile.
    return ImagePipeline(root)


class AssetResolver:
    """Turns image sources into absolute URLs: local files, which must exist, through the
    image pipeline (resized for ``width`` CSS pixels, hashed names); remote ones as they are."""

    def __init__(self, config: Config, issue: Issue, base_url: str) -> None:
        self.config = config
        self.issue = issue
        self.base_url = base_url.rstrip("/")
        self.images: list[ProcessedImage] = []
        self.pipeline = _pipeline(config.root.resolve())

    @property
    def files(self) -> list[Path]:
        return [image.path for image in self.images]

    def __call__(
        self, src: str, *, relative_to: Path | None = None, width: int = CONTENT_WIDTH
    ) -> str:
        if urlsplit(src).scheme in ("http", "https"):
            return src
        if urlsplit(src).scheme or src.startswith("//"):
            raise IssueFileError(
                f"{self.issue.path}: image {src!r}: use an https:// URL or a path to a local file"
            )
        folder = relative_to or self.issue.path.parent
        path = (folder / src).resolve()
        if not path.is_file():
            raise IssueFileError(
                f"{self.issue.path}: image {src!r} not found (looked for {path}); "
                "fix the path or add the file"
            )
        try:
            path.relative_to(self.config.root.resolve())
        except ValueError:
            raise IssueFileError(
                f"{self.issue.path}: image {src!r} is outside the newsletter folder; move it "
                "into issues/images/"
            ) from None
        try:
            image = self.pipeline.process(path, int(width))
        except OutputNotWritable:
            # A read-only copy of the project (the web app's archive, say) shows the
            # original file, which /assets/ serves from the project too.
            relative = path.relative_to(self.config.root.resolve())
            return f"{self.base_url}/{quote(relative.as_posix())}"
        if image not in self.images:
            self.images.append(image)
        return f"{self.base_url}/{quote(image.name)}"


def compile_issue(
    issue: Issue, config: Config, *, assets_base_url: str | None = None
) -> CompiledIssue:
    """Render the issue once. ``assets_base_url`` overrides where local images are served
    from (the preview serves them itself; sending uses the config's ``assets_url``)."""
    assets = AssetResolver(config, issue, assets_base_url or config.assets_base_url)

    def logo_url() -> str | None:
        logo = config.brand.logo
        return (
            assets(logo, relative_to=config.root, width=config.brand.logo_width) if logo else None
        )

    catalog = issue_catalog(config, issue)
    context = {
        **language_context(catalog),
        "config": config,
        "brand": config.brand,
        "issue": issue,
        "topics": [topic for topic in config.topics if topic.id in issue.topics],
        "asset_url": assets,
        "logo_url": logo_url,
    }
    greeting = config.greeting if issue.greeting is None else issue.greeting
    if greeting is None:  # the language's own ("Hi {first_name},", "Hallo {first_name},")
        greeting = catalog.gettext("Hi {first_name},")
    mjml_source = _render_template(
        template_environment(config),
        HTML_TEMPLATE,
        {**context, "recipient": _Markers("html"), "greeting": greeting_line(greeting, "html")},
    )
    text = _render_template(
        template_environment(config, text=True),
        TEXT_TEMPLATE,
        {**context, "recipient": _Markers("text"), "greeting": greeting_line(greeting, "text")},
    )
    html = _INLINER.inline(mjml_to_html(mjml_source))
    assets.pipeline.save()
    return CompiledIssue(
        issue=issue,
        subject=issue.subject,
        preheader=issue.preheader,
        mjml=mjml_source,
        html=html,
        text=text,
        assets=tuple(assets.files),
        images=tuple(assets.images),
        greeting_fallback=catalog.pgettext("greeting without a name", "there"),
    )


def greeting_line(greeting: str | Literal[False], part: str) -> str:
    """The greeting with the first-name marker in place; escaped for HTML ("" for none)."""
    if not greeting:
        return ""
    if part == "html":
        greeting = str(markupsafe.escape(greeting))
    return greeting.replace("{first_name}", marker(part, "greeting_name"))


def mjml_to_html(source: str) -> str:
    try:
        return mjml.mjml2html(source, disable_comments=True)
    except ValueError as error:
        raise RenderError(
            f"MJML compile failed: {error}; run 'newsletter build' and validate "
            "email.mjml with 'npx mjml --validate' to find the line"
        ) from None


def _render_template(environment: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return environment.get_template(name).render(context)
    except jinja2.TemplateNotFound as error:
        raise TemplateError(
            f"template {error.name!r} not found in templates/ or the bundled theme; "
            "check the name in the {% include %} or {% extends %} that uses it"
        ) from None
    except jinja2.TemplateSyntaxError as error:
        where = error.filename or error.name or name
        raise TemplateError(
            f"{where}:{error.lineno}: template syntax error: {error.message}"
        ) from None
    except jinja2.UndefinedError as error:
        raise TemplateError(
            f"{_template_location(error, name)}: {error.message}; "
            "check the variable name against docs/templates.md"
        ) from None
    except IssueFileError:
        raise
    except jinja2.TemplateError as error:
        raise TemplateError(f"{_template_location(error, name)}: {error}") from None


def _template_location(error: BaseException, fallback: str) -> str:
    """The innermost template frame of a runtime error, as ``file:line``."""
    traceback = error.__traceback__
    location = fallback
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_filename.endswith((".j2", ".html", ".mjml", ".txt")):
            location = f"{code.co_filename}:{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return location
