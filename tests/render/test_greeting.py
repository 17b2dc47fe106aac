"""The greeting: on by default, set or turned off per issue, and never "Hi Dr,"."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from newsletter.config import Config, load_config
from newsletter.errors import ConfigError, IssueFileError
from newsletter.models import Personalization, first_name
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from tests.render.test_render import issue_file


def parts(project: Path, config: Config, front_matter: str = "", name: str = "") -> tuple[str, str]:
    path = issue_file(project, "Hello, growers.\n", "title: Test issue\n" + front_matter)
    issue = read_issue(path, topics=config.topic_ids)
    recipient = Personalization(email="jane@example.org", name=name)
    return Personalizer(compile_issue(issue, config)).render(recipient)


@pytest.mark.parametrize(
    ("name", "greeted_as"),
    [
        ("Dr Jane Smith", "Jane"),
        ("Prof. Dr. Anna Berg", "Anna"),
        ("Smith, Jane", "Jane"),
        ("Dr Smith", "Dr Smith"),
        ("JANE SMITH", "Jane"),
        ("Mary-Jane Watson", "Mary-Jane"),
        ("J. Smith", ""),
        ("jane@example.org", ""),
        ("  ", ""),
    ],
)
def test_first_name_skips_titles_and_gives_up_when_unsure(name: str, greeted_as: str) -> None:
    assert first_name(name) == greeted_as


def test_default_greeting_uses_the_first_name_without_the_title(
    project: Path, config: Config
) -> None:
    html, text = parts(project, config, name="Dr Jane Smith")
    assert "Hi Jane," in text and "Hi Jane," in html
    assert "Hi Dr," not in text


def test_unknown_name_falls_back(project: Path, config: Config) -> None:
    html, text = parts(project, config, name="J. Smith")
    assert "Hi there," in text and "Hi there," in html


def test_an_issue_can_turn_the_greeting_off(project: Path, config: Config) -> None:
    html, text = parts(project, config, "greeting: false\n", name="Jane Smith")
    assert "Hi Jane" not in text and "Hi Jane" not in html
    assert "Hello, growers." in text


def test_an_issue_can_set_its_own_greeting(project: Path, config: Config) -> None:
    html, text = parts(project, config, 'greeting: "Dear {first_name} & co,"\n', name="Jane")
    assert "Dear Jane & co," in text
    assert "Dear Jane &amp; co," in html


def test_the_config_sets_the_default_greeting(project: Path) -> None:
    settings = yaml.safe_load((project / "newsletter.yaml").read_text())
    (project / "newsletter.yaml").write_text(
        yaml.safe_dump({**settings, "greeting": "Hello {first_name},"})
    )
    config = load_config(project / "newsletter.yaml")
    _, text = parts(project, config, name="Jane Smith")
    assert "Hello Jane," in text
    (project / "newsletter.yaml").write_text(yaml.safe_dump({**settings, "greeting": False}))
    _, text = parts(project, load_config(project / "newsletter.yaml"), name="Jane Smith")
    assert "Jane" not in text.split("Hello, growers.")[0]


def test_a_greeting_with_an_unknown_placeholder_is_refused(project: Path, config: Config) -> None:
    with pytest.raises(IssueFileError, match=r"greeting: .*only placeholder.*\{first_name\}"):
        parts(project, config, 'greeting: "Dear {name},"\n')
    settings = yaml.safe_load((project / "newsletter.yaml").read_text())
    (project / "newsletter.yaml").write_text(yaml.safe_dump({**settings, "greeting": "Hi {x}"}))
    with pytest.raises(ConfigError, match=r"greeting"):
        load_config(project / "newsletter.yaml")
