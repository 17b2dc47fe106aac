"""The generated references match the code: docs/cli.md and docs/configuration.md."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_generated_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
