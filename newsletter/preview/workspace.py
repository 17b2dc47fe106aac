"""The newsletter folder as the preview sees it: every view rendered from the same build.

Builds are lazy and cached per *generation*: the watcher bumps the generation on every
relevant save, and the next request for an issue rebuilds it (config, issue, compile,
checks) once for all the views of the page. A failed build keeps the last good preview,
so the page shows the error panel above the version that last worked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Config, load_config
from newsletter.errors import (
    ConfigError,
    IssueFileError,
    NewsletterError,
    RenderError,
    StoreError,
    TemplateError,
)
from newsletter.models import Issue
from newsletter.preview.headers import message_headers
from newsletter.preview.recipients import Recipient, Recipients
from newsletter.render.checks import Finding, check_compiled
from newsletter.render.compile import compile_issue
from newsletter.render.issues import ISSUE_NAME, list_issues, read_issue
from newsletter.render.personalize import Personalizer

ASSETS_PATH = "/assets"  # where the preview serves the project's local images
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CACHED_PREVIEWS = 32  # (issue, recipient) pairs kept; the picker can ask for many

_PROBLEM_TITLES: list[tuple[type[NewsletterError], str]] = [
    (ConfigError, "newsletter.yaml has a problem"),
    (IssueFileError, "The issue file has a problem"),
    (TemplateError, "A template has a problem"),
    (RenderError, "The email does not compile"),
    (StoreError, "The subscriber database has a problem"),
]


@dataclass(frozen=True)
class Problem:
    """Why a build failed, as the error panel shows it."""

    title: str
    lines: tuple[str, ...]
    traceback: str = ""  # only for unexpected errors, which are bugs

    @classmethod
    def from_error(cls, error: Exception) -> Problem:
        if isinstance(error, NewsletterError):
            title = next(
                (title for kind, title in _PROBLEM_TITLES if isinstance(error, kind)),
                "The issue cannot be rendered",
            )
            return cls(title, tuple(error.problems))
        return cls(
            "Unexpected error: this is a bug in newsletter, please report it",
            (f"{type(error).__name__}: {error}",),
            "".join(traceback.format_exception(error)),
        )


@dataclass(frozen=True)
class Preview:
    """One issue rendered for one recipient: everything the page shows."""

    issue: Issue
    sender: str  # the From name an inbox shows
    recipient: Recipient
    html: str  # as sent to this recipient
    text: str
    frame_html: str  # as shown in the page: local images come from the preview server
    headers: list[tuple[str, str]]
    findings: list[Finding]
    version: str  # changes whenever what the email frames show changes, images included

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


@dataclass(frozen=True)
class Attempt:
    """The latest build of one preview: the newest good one, and the error if it failed."""

    generation: int
    preview: Preview | None
    problem: Problem | None = None


@dataclass(frozen=True)
class IssueEntry:
    """A line of the index of issues."""

    stem: str
    file: str
    title: str
    subject: str
    date: dt.date | None
    problem: str = ""


class Changes:
    """Counts changes to the folder and wakes the clients waiting for the next one."""

    def __init__(self) -> None:
        self.instance = secrets.token_hex(4)  # tells a restarted server from the old one
        self._generation = 0
        self._closed = False
        self._condition = threading.Condition()

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def tag(self) -> str:
        """What the page compares to know whether it is up to date."""
        return self.tag_of(self._generation)

    def tag_of(self, generation: int) -> str:
        return f"{self.instance}-{generation}"

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait until the generation passes ``seen``; False on timeout or when closed."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._closed or self._generation != seen, timeout=timeout
            )
            return not self._closed and self._generation != seen

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class Workspace:
    """Renders the issues of one newsletter folder for the preview, rebuilt on change."""

    def __init__(
        self,
        config_path: Path,
        *,
        issue: Path | None = None,
        default_address: str | None = None,
        assets_url: str = ASSETS_PATH,
        language: str | None = None,
    ) -> None:
        self.config_path = config_path.resolve()
        self.root = self.config_path.parent
        self.pinned_issue = issue.resolve() if issue else None
        self.default_address = default_address
        self.assets_url = assets_url
        self.language = language  # None: the issue's, else the config's
        self.changes = Changes()
        self._lock = threading.RLock()
        self._config: tuple[int, Config | ConfigError] | None = None
        self._recipients: Recipients | None = None
        self._previews: OrderedDict[tuple[Path, str], Attempt] = OrderedDict()

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    def config(self) -> Config:
        """The current config; raises ConfigError (the same one until the next change)."""
        with self._lock:
            generation = self.changes.generation
            if self._config is None or self._config[0] != generation:
                try:
                    self._config = (generation, load_config(self.config_path))
                except ConfigError as error:
                    self._config = (generation, error)
            loaded = self._config[1]
            if isinstance(loaded, ConfigError):
                raise loaded.with_traceback(None)
            return loaded

    def issue_path(self, stem: str) -> Path | None:
        """The issue file a URL names, or None; only files in issues/ and the pinned one."""
        if self.pinned_issue is not None and self.pinned_issue.stem == stem:
            return self.pinned_issue
        if not _STEM.fullmatch(stem):
            return None
        path = self.issues_dir / f"{stem}.md"
        return path if path.is_file() else None

    def index(self) -> list[IssueEntry]:
        """Every issue, newest first, read far enough to show its title and date."""
        config = self.config()
        paths = list_issues(self.issues_dir)
        if self.pinned_issue is not None and self.pinned_issue not in paths:
            paths.insert(0, self.pinned_issue)
        entries = []
        for path in paths:
            file = relative(path, self.root)
            try:
                issue = read_issue(path, topics=config.topic_ids)
            except NewsletterError as error:
                named = ISSUE_NAME.fullmatch(path.stem)
                date = dt.date.fromisoformat(named["date"]) if named else None
                problem = _without_file(error.problems[0], path)
                entries.append(IssueEntry(path.stem, file, path.stem, "", date, problem))
                continue
            entries.append(IssueEntry(path.stem, file, issue.title, issue.subject, issue.date))
        return entries

    def preview(self, path: Path, address: str | None = None) -> Attempt:
        """The issue at ``path`` for ``address`` (default: ``--as``, else sample data)."""
        address = (address if address is not None else self.default_address) or ""
        key = (path, address)
        with self._lock:
            generation = self.changes.generation
            previous = self._previews.get(key)
            if previous is not None and previous.generation == generation:
                self._previews.move_to_end(key)
                return previous
            try:
                attempt = Attempt(generation, self._build(path, address))
            except Exception as error:  # the panel shows it; the server must keep running
                last_good = previous.preview if previous is not None else None
                attempt = Attempt(generation, last_good, Problem.from_error(error))
            self._previews[key] = attempt
            self._previews.move_to_end(key)
            while len(self._previews) > _CACHED_PREVIEWS:
                self._previews.popitem(last=False)
            return attempt

    def recipients(self) -> Recipients:
        """Who the picker offers; the store stays open until the config changes."""
        config = self.config()
        with self._lock:
            if self._recipients is None or self._recipients.config != config:
                if self._recipients is not None:
                    self._recipients.close()
                self._recipients = Recipients(config)
            return self._recipients

    def close(self) -> None:
        """Release the subscriber store, if one was opened."""
        with self._lock:
            if self._recipients is not None:
                self._recipients.close()
                self._recipients = None

    def _build(self, path: Path, address: str) -> Preview:
        config = self.config()
        recipients = self.recipients()
        issue = read_issue(path, topics=config.topic_ids)
        if self.language:
            issue = dataclasses.replace(issue, language=self.language)
        # Compiled twice: as it will be sent (checked and measured exactly like
        # 'newsletter check'), and with local images served by the preview.
        sent = compile_issue(issue, config)
        shown = compile_issue(issue, config, assets_base_url=self.assets_url)
        recipient = recipients.resolve(address, issue.slug)
        html, text = Personalizer(sent).render(recipient.personalization)
        frame_html, _ = Personalizer(shown).render(recipient.personalization)
        return Preview(
            issue=issue,
            sender=config.sender.name or config.sender.email,
            recipient=recipient,
            html=html,
            text=text,
            frame_html=frame_html,
            headers=message_headers(
                config,
                compiled=sent,
                recipient=recipient,
                campaign=recipients.campaign(issue.slug),
            ),
            findings=list(check_compiled(sent, config)),
            version=_version(frame_html, shown.assets),
        )


def _version(html: str, assets: tuple[Path, ...]) -> str:
    digest = hashlib.sha256(html.encode("utf-8"))
    for asset in assets:  # a replaced image changes no HTML, but must reload the frames
        stat = asset.stat()
        digest.update(f"{asset}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return digest.hexdigest()[:12]


def _without_file(message: str, path: Path) -> str:
    """``/x/issues/a.md:6: bad`` -> ``line 6: bad``, for a list that already names the file."""
    rest = message.removeprefix(str(path))
    line, colon, text = rest.removeprefix(":").partition(": ")
    if colon and line.isdigit():
        return f"line {line}: {text}"
    return rest.removeprefix(": ")


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
