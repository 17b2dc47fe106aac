"""The feeds ``newsletter serve`` answers, validated against their specifications (see
tests/site/feed_schema.py): Atom by RFC 4287's schema, RSS 2.0 by its required elements."""

from __future__ import annotations

from flask.testing import FlaskClient

from newsletter.web.context import Services
from tests.site.feed_schema import atom_problems, rss_problems
from tests.web.test_public_site import publish_three


def test_every_feed_the_server_answers_meets_its_specification(
    client: FlaskClient, site: Services
) -> None:
    publish_three(site)
    folders = ["", *(f"/topics/{topic}" for topic in site.config.topic_ids)]
    problems: dict[str, list[str]] = {}

    for folder in folders:
        for name, check in (("feed.xml", atom_problems), ("rss.xml", rss_problems)):
            response = client.get(f"{folder}/{name}")
            assert response.status_code == 200, f"{folder}/{name}"
            problems[f"{folder}/{name}"] = check(response.data)

    assert problems == {path: [] for path in problems}
    assert len(problems) == 2 * (1 + len(site.config.topic_ids))
    assert client.get("/feed.xml").data.count(b"<entry>") == 3  # entries were validated
