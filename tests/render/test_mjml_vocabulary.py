"""The MJML we generate stays inside the MJML component set (mjml-python won't tell us)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.render import mjml_schema
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from tests.conftest import ROOT, SEED_ISSUE, skip_or_fail


@pytest.fixture(params=["en", "de", "ar"])
def seed_mjml(project: Path, config: Config, request: pytest.FixtureRequest) -> str:
    # Arabic: the right-to-left attributes (direction on sections and columns) too.
    speaking = config.model_copy(update={"language": request.param})
    issue = read_issue(project / SEED_ISSUE, topics=speaking.topic_ids)
    return compile_issue(issue, speaking).mjml


def test_seed_issue_mjml_uses_only_real_tags_and_attributes(seed_mjml: str) -> None:
    assert list(mjml_schema.problems(seed_mjml)) == []
    assert "<mj-text" in seed_mjml and "<mj-image" in seed_mjml  # the check saw real MJML


def test_vocabulary_check_catches_what_mjml_python_passes_through() -> None:
    source = (
        "<mjml>\n<mj-body>\n<mj-section>\n<mj-column>\n<mj-txt>Hi</mj-txt>\n"
        '<mj-image src="a" alt="" colour="red" padding="0 24px" />\n'
        "<mj-text><p><b>HTML inside mj-text is fine</b></p></mj-text>\n"
        "</mj-column>\n</mj-section>\n</mj-body>\n</mjml>\n"
    )
    assert list(mjml_schema.problems(source)) == [
        (5, "<mj-txt> is not an MJML component"),
        (6, "<mj-image> has no attribute 'colour'"),
        (
            6,
            "<mj-image padding='0 24px'>: write 0px, not 0 (mjml-python computes wrong image "
            "widths from a unitless 0)",
        ),
    ]


def test_official_mjml_validator_accepts_the_seed_issue(seed_mjml: str, tmp_path: Path) -> None:
    """The official compiler's strict validation, where the npm package is installed."""
    binary = ROOT / "node_modules" / ".bin" / "mjml"
    if not binary.exists() or shutil.which("node") is None:
        skip_or_fail("the official MJML compiler is not installed (npm ci)")
    source = tmp_path / "email.mjml"
    source.write_text(seed_mjml)
    result = subprocess.run(
        [str(binary), str(source), "--config.validationLevel=strict", "-s"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr or result.stdout
    assert "<html" in result.stdout
    assert result.stderr.strip() == ""
