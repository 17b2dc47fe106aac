"""Pre-send checks: what would hurt if this issue went out now.

Used by ``newsletter check``, by ``newsletter send`` (which refuses on errors) and by
the preview page, so all three agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from newsletter.config import CONFIG_FILENAME, Config, ab_settings, missing_measure
from newsletter.errors import NewsletterError, SegmentError
from newsletter.models import CompiledIssue, ImageBlock, Issue
from newsletter.render import mjml_schema
from newsletter.render.checks_source import source_problems
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from newsletter.segments.saved import resolve
from newsletter.tokens import sample_personalization

CLIP_ERROR_BYTES = 100 * 1024  # Gmail clips an HTML part above about 102 KB
CLIP_WARNING_BYTES = 85 * 1024
SUBJECT_WARNING_LENGTH = 78
PREHEADER_WARNING_LENGTH = 140
IMAGE_SOURCE_WARNING_BYTES = 1024 * 1024  # a source this big is likely a camera original
IMAGE_WARNING_BYTES = 200 * 1024  # after resizing: slow on a phone connection
IMAGE_ERROR_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    message: str
    file: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.level}: {self.message}"


def _check_segment(issue: Issue, config: Config, label: str) -> Iterator[Finding]:
    """The front matter's ``segment:`` names a saved segment or parses, over known topics
    (``send`` refuses it the same way)."""
    if issue.segment is None:
        return
    try:
        resolve(config.segments, issue.segment, config.topic_ids)
    except SegmentError as error:
        yield Finding("error", f"front matter: segment: {error}", label)


def _check_subject_test(
    issue: Issue, config: Config, label: str, provider: str
) -> Iterator[Finding]:
    """A subject test's variants fit in an inbox, and something measures the winner
    when it goes through ``provider`` (``send`` refuses without it)."""
    if not issue.subject_variants:
        return
    for letter, variant in zip("ABCD", issue.subject_variants, strict=False):
        if len(variant) > SUBJECT_WARNING_LENGTH:
            yield Finding(
                "warning",
                f"subject_variants: {letter} is {len(variant)} characters; inboxes cut it "
                f"after about {SUBJECT_WARNING_LENGTH}",
                label,
            )
    metric = ab_settings(config, issue.ab).metric
    reason = missing_measure(config, provider, metric)
    if reason is not None:
        yield Finding("error", f"subject_variants: {reason}", label)


def check_issue(
    path: Path, config: Config, provider: str | None = None
) -> tuple[list[Finding], CompiledIssue | None]:
    """Read, compile and check one issue, to be sent through ``provider`` (default: the
    configured one); a file that does not compile is one error."""
    label = _display(path)
    try:
        issue = read_issue(path, topics=config.topic_ids)
        compiled = compile_issue(issue, config)
    except NewsletterError as error:
        return [_finding_from_problem(problem, path, label) for problem in error.problems], None
    return list(check_compiled(compiled, config, provider)), compiled


def config_findings(config: Config, provider: str | None = None) -> list[Finding]:
    """Warnings about the sender's settings (no return path for bounces, one on another
    domain, an http site_url), once per run rather than per issue."""
    from newsletter.deliverability.setup import setup_warnings

    return [
        Finding("warning", message, CONFIG_FILENAME) for message in setup_warnings(config, provider)
    ]


def link_findings(compiled: CompiledIssue, config: Config, *, timeout: float) -> list[Finding]:
    """``check --links``: one error per link that does not answer, on its line."""
    from newsletter.render.links_check import broken_links  # urllib and threads: only when asked

    label = _display(compiled.issue.path)
    return [
        Finding("error", f"broken link {status.url} ({status.reason})", label, line)
        for line, status in broken_links(compiled, config, timeout=timeout)
    ]


def _finding_from_problem(problem: str, path: Path, label: str) -> Finding:
    """``"issues/x.md:3: message"`` -> a finding on line 3 of the issue."""
    match = re.match(rf"{re.escape(str(path))}(?::(\d+))?: (.*)", problem, re.DOTALL)
    if match is None:
        return Finding("error", problem, label)
    line = int(match[1]) if match[1] else None
    return Finding("error", match[2], label, line)


def check_compiled(
    compiled: CompiledIssue, config: Config, provider: str | None = None
) -> Iterator[Finding]:
    """Everything :func:`check_issue` finds in a compiled issue sent through
    ``provider`` (default: the configured one)."""
    issue = compiled.issue
    label = _display(issue.path)
    sample = sample_personalization(config, issue.slug)
    html, text = Personalizer(compiled).render(sample)

    size = len(html.encode("utf-8"))
    if size >= CLIP_ERROR_BYTES:
        yield Finding(
            "error",
            f"HTML is {size / 1024:.0f} KB: Gmail clips above about 102 KB "
            "and hides the unsubscribe link; shorten the issue",
            label,
        )
    elif size >= CLIP_WARNING_BYTES:
        yield Finding(
            "warning",
            f"HTML is {size / 1024:.0f} KB, close to Gmail's clipping limit (about 102 KB)",
            label,
        )

    explained: set[str] = set()  # URLs a source problem already explains
    for problem in source_problems(issue):
        yield Finding(problem.level, problem.message, label, problem.line)
        if problem.url is not None:
            explained.add(problem.url)
    yield from _check_subject_and_preheader(issue, label)
    yield from _check_headings(issue, label)
    yield from _check_segment(issue, config, label)
    yield from _check_subject_test(issue, config, label, provider or config.provider)

    page = _Links()
    page.feed(html)
    for src, alt in page.images:
        if alt is None:
            yield Finding(
                "error",
                f"image {src} has no alt text; describe it for screen "
                "readers and for readers with images off",
                label,
            )
    for kind, url in page.urls:
        if url not in explained and not _absolute(url, allow_mailto=kind == "link"):
            yield Finding(
                "error",
                f"{kind} URL {url!r} is not an absolute http(s) URL: it cannot work from an inbox",
                label,
            )
    for block in issue.blocks:
        if isinstance(block, ImageBlock) and not block.image.alt.strip():
            yield Finding(
                "error",
                f"image {block.image.src} has no alt text; write ![what it shows](...)",
                label,
            )

    for part, body in (("HTML", html), ("text", text)):
        if sample.unsubscribe_url not in body:
            yield Finding(
                "error",
                f"the {part} part has no unsubscribe link; keep "
                "{{ recipient.unsubscribe_url }} in the template",
                label,
            )
        first_line = config.postal_address.splitlines()[0]
        if first_line not in body:
            yield Finding(
                "error",
                f"the {part} part has no postal address (CAN-SPAM); keep "
                "{{ config.postal_address }} in the template",
                label,
            )

    yield from _check_image_sizes(compiled, config, label)

    for line, message in mjml_schema.problems(compiled.mjml):
        yield Finding("error", message, "email.mjml", line)


def _check_image_sizes(compiled: CompiledIssue, config: Config, label: str) -> Iterator[Finding]:
    for image in compiled.images:
        try:
            name = str(image.source.relative_to(config.root.resolve()))
        except ValueError:
            name = str(image.source)
        shown = f"{name} (as sent: {_size(image.output_bytes)}, {image.width}×{image.height})"
        if image.output_bytes > IMAGE_ERROR_BYTES:
            yield Finding(
                "error",
                f"image {shown} is too big to send even after resizing; "
                "export it smaller or as JPEG",
                label,
            )
        elif image.output_bytes > IMAGE_WARNING_BYTES:
            yield Finding(
                "warning",
                f"image {shown} is over {_size(IMAGE_WARNING_BYTES)}: slow on a phone; "
                "crop it or export it as JPEG",
                label,
            )
        if image.source_bytes > IMAGE_SOURCE_WARNING_BYTES:
            yield Finding(
                "warning",
                f"image {name} is {_size(image.source_bytes)} in the project; resized to "
                f"{_size(image.output_bytes)} for sending, but keep originals this big "
                "out of issues/images/",
                label,
            )


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MB" if count >= 1024 * 1024 else f"{count / 1024:.0f} KB"


def _check_subject_and_preheader(issue: Issue, label: str) -> Iterator[Finding]:
    if not issue.subject.strip():
        yield Finding("error", "the subject is empty; set 'subject' or 'title'", label)
    elif len(issue.subject) > SUBJECT_WARNING_LENGTH and not issue.subject_variants:
        yield Finding(
            "warning",
            f"the subject is {len(issue.subject)} characters; inboxes "
            f"cut it after about {SUBJECT_WARNING_LENGTH}",
            label,
        )
    if not issue.preheader.strip():
        yield Finding(
            "warning",
            "no preheader: inboxes will show the first text of the email instead; set 'preheader'",
            label,
        )
    elif len(issue.preheader) > PREHEADER_WARNING_LENGTH:
        yield Finding(
            "warning",
            f"the preheader is {len(issue.preheader)} characters; "
            f"inboxes show about {PREHEADER_WARNING_LENGTH} at most",
            label,
        )


def _check_headings(issue: Issue, label: str) -> Iterator[Finding]:
    previous = 1  # the issue title is the h1
    for heading in issue.headings:
        if heading.level == 1:
            yield Finding(
                "warning",
                f"heading {heading.text!r} is a level-1 heading, like the "
                "title; use ## for sections",
                label,
                heading.line,
            )
        elif heading.level > previous + 1:
            yield Finding(
                "error",
                f"heading {heading.text!r} skips from level {previous} to "
                f"{heading.level}; use {'#' * (previous + 1)}",
                label,
                heading.line,
            )
        previous = heading.level


def _absolute(url: str, *, allow_mailto: bool) -> bool:
    parts = urlsplit(url)
    if allow_mailto and parts.scheme == "mailto":
        return True
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, str | None]] = []
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            src = values.get("src") or ""
            self.images.append((src, values.get("alt")))
            self.urls.append(("image", src))
        elif tag == "a" and values.get("href") is not None:
            self.urls.append(("link", values["href"] or ""))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def has_errors(findings: list[Finding]) -> bool:
    return any(finding.level == "error" for finding in findings)
