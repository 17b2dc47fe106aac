"""From the source's tags, labels and groups to this newsletter's topics.

A value becomes a topic through, in order: ``--map-topic "VALUE=topic"`` or
``imports.topic_map`` in newsletter.yaml (compared without case; mapping to an
empty id drops the value on purpose), a topic with that id, or a topic whose id is
the value's slug ("Research" and "research" both become ``research``). Other values
are counted, so the import can report each once with a ``topics:`` entry to add.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

import yaml

from newsletter.errors import StoreError


class TopicMapper:
    def __init__(self, known: Sequence[str], mapping: Mapping[str, str]) -> None:
        self.ordered = tuple(known)  # as newsletter.yaml lists them, for messages
        self.known = frozenset(known)
        self.mapping: dict[str, str] = {}
        for value, topic in mapping.items():
            topic_id = topic.strip().lower()
            if topic_id and topic_id not in self.known:
                raise StoreError(
                    f"topic mapping {value!r}={topic!r}: {topic!r} is not a topic in "
                    f"newsletter.yaml (known topics: {', '.join(known) or 'none'})"
                )
            self.mapping[value.strip().casefold()] = topic_id
        self._cache: dict[str, str | None] = {}

    def topic_for(self, value: str) -> str | None:
        """The topic id of a source value; None if it has none (counted by the caller)."""
        if value in self._cache:
            return self._cache[value]
        folded = value.strip().casefold()
        topic: str | None = self.mapping.get(folded)
        if topic is None:
            for candidate in (folded, slug(value)):
                if candidate in self.known:
                    topic = candidate
                    break
        self._cache[value] = topic
        return topic

    def topics(self, values: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
        """The topic ids of the values (no repeats), and the values without one."""
        found: list[str] = []
        missing: list[str] = []
        for value in values:
            topic = self.topic_for(value)
            if topic is None:
                missing.append(value)
            elif topic and topic not in found:
                found.append(topic)
        return tuple(found), missing


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``--map-topic`` values, ``SOURCE VALUE=topic_id``; the last ``=`` splits them."""
    mapping: dict[str, str] = {}
    for item in items:
        value, equals, topic = item.rpartition("=")
        if not equals or not value.strip():
            raise StoreError(
                f'--map-topic {item!r}: write it as "SOURCE VALUE=topic_id", '
                'for example --map-topic "Food & Drink=recipes"'
            )
        mapping[value] = topic
    return mapping


def slug(value: str) -> str:
    """A topic id for a value: lowercase ASCII letters and digits joined by ``-``."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "topic"


def suggested_topics(values: Iterable[str]) -> str:
    """A ``topics:`` YAML list for the values: a slug id each, the original as the name."""
    entries: list[dict[str, str]] = []
    taken: set[str] = set()
    for value in values:
        topic_id = base = slug(value)
        number = 2
        while topic_id in taken:
            topic_id = f"{base}-{number}"
            number += 1
        taken.add(topic_id)
        name = value if value != topic_id else value.replace("-", " ").title()
        entries.append({"id": topic_id, "name": name})
    return yaml.safe_dump(entries, allow_unicode=True, sort_keys=False, width=1000)
