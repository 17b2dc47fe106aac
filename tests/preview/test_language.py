"""``preview --language``: the issue's frames and plain text in another language."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from werkzeug.test import Client

from newsletter.cli import cli
from newsletter.preview import Workspace
from newsletter.preview.app import PreviewApp
from tests.preview.conftest import SEED_STEM


def test_every_view_of_the_preview_speaks_the_chosen_language(project: Path) -> None:
    client = Client(PreviewApp(Workspace(project / "newsletter.yaml", language="fr")))

    for scheme in ("light", "dark"):
        frame = client.get(f"/issue/{SEED_STEM}/email.html?scheme={scheme}").text
        assert '<html lang="fr" dir="ltr"' in frame
        assert ">Se désabonner</a>" in frame and "26 novembre 2026" in frame
    text = client.get(f"/issue/{SEED_STEM}/email.txt").text
    assert "Se désabonner: https://" in text and "Bonjour Sam," in text


def test_without_the_option_the_preview_follows_the_issue(project: Path) -> None:
    seed = project / "issues" / f"{SEED_STEM}.md"
    seed.write_text(
        seed.read_text(encoding="utf-8").replace("---\n", "---\nlanguage: ar\n", 1),
        encoding="utf-8",
    )
    client = Client(PreviewApp(Workspace(project / "newsletter.yaml")))

    frame = client.get(f"/issue/{SEED_STEM}/email.html?scheme=light").text
    assert '<html lang="ar" dir="rtl"' in frame and "إلغاء الاشتراك" in frame


def test_an_unknown_language_is_one_error_before_the_server_starts(
    runner: CliRunner, project: Path
) -> None:
    result = runner.invoke(cli, ["preview", "--language", "xx", "--no-open"])

    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: preview: --language: 'xx' has no shipped catalog (shipped: ar, de, en, es, "
        "fr, it, nl, pt); use one of them"
    )
