"""The docs match the code: the generated references (docs/cli.md, docs/configuration.md)
and the README's examples."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from newsletter.config import load_config
from tests.conftest import ROOT


@pytest.mark.slow
def test_generated_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readmes_first_real_send_is_a_config_that_loads(project: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### A first real send", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README's first real send lost its newsletter.yaml block"
    settings = yaml.safe_load((project / "newsletter.yaml").read_text(encoding="utf-8"))
    settings.update(yaml.safe_load(block.group(1)))
    (project / "newsletter.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")

    config = load_config(project / "newsletter.yaml")

    assert config.provider == "smtp"
    assert (config.smtp.host, config.smtp.port, config.smtp.security) == (
        "smtp.example.org",
        587,
        "starttls",
    )
    assert config.smtp.password_env == "SMTP_PASSWORD"  # what the README exports
