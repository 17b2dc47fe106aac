"""Reading sequences: the folder named in ``newsletter.yaml``, its steps and their times.

A step is an issue file (``check``, ``build`` and ``preview`` take it as they take an
issue) whose front matter also says ``after:`` (``0 days``, ``3 days``, ``12 hours``,
``2 weeks``): when, after the reader became active, it goes out. Its ``topics:``, if it
has any, narrow who gets it; otherwise the sequence's ``topics`` apply.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from newsletter.author.scaffold import STARTER, slugify
from newsletter.config import AutomationSettings, Config, load_yaml_mapping
from newsletter.errors import (
    AutomationError,
    ConfigError,
    IssueFileError,
    NewsletterError,
    SendError,
)
from newsletter.render.front_matter import split_front_matter

_AFTER = re.compile(r"(?P<count>\d{1,5})\s*(?P<unit>minute|hour|day|week)s?", re.IGNORECASE)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_AFTER_EXAMPLE = "write e.g. 'after: 0 days' (right away) or 'after: 3 days'"


def parse_after(value: object, *, what: str) -> dt.timedelta:
    """``after:`` as a time span; :class:`AutomationError` naming ``what`` if it is not one."""
    if value is None:
        raise AutomationError(f"{what}: after: required in a sequence's step; {_AFTER_EXAMPLE}")
    text = str(value).strip()
    if text == "0":
        return dt.timedelta(0)
    match = _AFTER.fullmatch(text)
    if match is None:
        raise AutomationError(f"{what}: after: cannot read {text!r}; {_AFTER_EXAMPLE}")
    seconds = int(match["count"]) * _UNIT_SECONDS[match["unit"].lower()]
    return dt.timedelta(seconds=seconds)


def describe_after(after: dt.timedelta) -> str:
    """``3 days``, ``12 hours``, ``0 days``: the way an editor writes it."""
    seconds = int(after.total_seconds())
    for unit, size in (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0 and (unit != "week" or seconds >= size):
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "0 days"


@dataclass(frozen=True)
class Step:
    """One step of a sequence, as its file is now."""

    automation: str
    path: Path
    key: str  # the file's stem: stable while the file keeps its name
    after: dt.timedelta
    topics: tuple[str, ...]  # () = everyone in the sequence
    source_hash: str  # SHA-256 of the file: a new version when it changes

    @property
    def campaign_slug(self) -> str:
        """The campaign of this version of the step (a campaign slug, never an issue's:
        issue slugs hold no '/')."""
        return f"{self.automation}/{self.key}@{self.source_hash[:10]}"


@dataclass(frozen=True)
class Sequence:
    name: str
    folder: Path
    topics: tuple[str, ...]
    steps: tuple[Step, ...]  # by time, then file name


def sequence_settings(config: Config) -> dict[str, AutomationSettings]:
    """The configured sequences (not the digests), by name."""
    return {name: a for name, a in config.automations.items() if a.path is not None}


def _folder(config: Config, settings: AutomationSettings) -> Path:
    assert settings.path is not None  # a sequence
    return config.root / settings.path


def read_sequences(config: Config) -> list[Sequence]:
    """Every configured sequence with its steps; the first problem raises, naming the
    file or the ``newsletter.yaml`` key (so nothing is sent from a half-read setup)."""
    return [read_sequence(config, name) for name in sequence_settings(config)]


def read_sequence(config: Config, name: str) -> Sequence:
    settings = sequence_settings(config).get(name)
    if settings is None:
        known = ", ".join(sequence_settings(config)) or "none yet"
        raise AutomationError(
            f"newsletter.yaml: automations: no sequence named {name!r} (configured: {known}); "
            f"add 'automations: {{{name}: {{path: automations/{name}}}}}'"
        )
    folder = _folder(config, settings)
    if not folder.is_dir():
        raise AutomationError(
            f"newsletter.yaml: automations.{name}.path: {settings.path} is not a folder; "
            f"create it (newsletter new --automation {name} TITLE) or fix the path"
        )
    steps = [
        read_step(path, name, settings.topics)
        for path in sorted(folder.glob("*.md"))
        if not path.name.startswith(".")
    ]
    steps.sort(key=lambda step: (step.after, step.key))
    return Sequence(name, folder, tuple(settings.topics), tuple(steps))


def read_step(path: Path, automation: str, topics: tuple[str, ...] | list[str] = ()) -> Step:
    """A step's timing and topics (the rest of the file is read like any issue's)."""
    try:
        raw = path.read_bytes()
        source = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise IssueFileError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    front, _body, _line = split_front_matter(path, source)
    try:
        matter = load_yaml_mapping(path, "\n" + front, what="the front matter")
    except ConfigError as error:
        raise IssueFileError(str(error)) from None
    after = parse_after(matter.get("after"), what=f"{path}: front matter")
    if matter.get("segment") is not None:  # run-due would send it to everyone due
        raise AutomationError(
            f"{path}: front matter: segment: a sequence's step goes to every reader of the "
            "sequence who is due (narrow it with topics:); segments do not apply to steps: "
            "remove it"
        )
    own = matter.get("topics") or []
    if not isinstance(own, list):
        raise IssueFileError(f"{path}: front matter: topics: give a list, e.g. [news]")
    return Step(
        automation=automation,
        path=path,
        key=path.stem,
        after=after,
        topics=tuple(str(topic) for topic in own) or tuple(topics),
        source_hash=hashlib.sha256(raw).hexdigest(),
    )


def step_of(config: Config, path: Path) -> Step | None:
    """The step ``path`` is, if it lies in a configured sequence's folder."""
    resolved = path.resolve()
    for name, settings in sequence_settings(config).items():
        if resolved.parent == _folder(config, settings).resolve():
            return read_step(path, name, settings.topics)
    return None


def refuse_step_as_issue(config: Config, path: Path) -> None:
    """A step of a sequence goes to each reader when they are due (run-due), never to the
    whole list at once: sending it as an issue would greet everyone again."""
    try:
        step = step_of(config, path)
    except NewsletterError:
        return  # not a readable step: the plan says what is wrong with the file
    if step is not None:
        raise SendError(
            f"{path}: a step of the sequence {step.automation!r}: 'newsletter run-due' "
            "sends it to each reader when it is due; --test sends a proof, "
            "--retry-unknown sends it again to the readers whose copy is unknown, "
            "--retry-failed to those whose copy failed"
        )


def new_step(config: Config, automation: str, title: str, *, today: dt.date | None = None) -> Path:
    """A step file from the starter issue, due ``after:`` the sequence's last step."""
    if not title.strip() or "\n" in title:
        raise NewsletterError("the title must be one non-empty line")
    settings = sequence_settings(config).get(automation)
    if settings is None:
        read_sequence(config, automation)  # raises, saying what to add
        raise AssertionError  # pragma: no cover
    folder = _folder(config, settings)
    existing = sorted(folder.glob("*.md")) if folder.is_dir() else []
    path = folder / f"{len(existing) + 1:02d}-{slugify(title)}.md"
    if path.exists():
        raise NewsletterError(f"{path} already exists; pick another title or edit that file")
    after = "0 days" if not existing else "3 days"
    date = today or dt.date.today()
    template = (STARTER / "issue.md").read_text(encoding="utf-8")
    quoted = title.replace("\\", "\\\\").replace('"', '\\"')
    text = template.replace("{title}", quoted).replace("{date}", date.isoformat())
    text = text.replace(
        "topics: []",
        f"after: {after}  # after the reader became active (confirmed or added)\ntopics: []",
        1,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
