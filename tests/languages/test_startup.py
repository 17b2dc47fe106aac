"""A command reads only the catalog it speaks: none for English, none for `--help`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import SEED_ISSUE

# Records every catalog file the process opens, and whether Babel was imported.
SCRIPT = """
import json, sys
opened = []
sys.addaudithook(lambda event, args: event == "open" and str(args[0]).endswith(".mo")
                 and opened.append(str(args[0]).split("/locale/")[-1]))
from newsletter.cli import main
sys.argv = ["newsletter", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps({"opened": opened, "babel": "babel" in sys.modules}), file=sys.stderr)
"""


def run(args: list[str], cwd: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_help_loads_no_catalog_and_no_babel(tmp_path: Path) -> None:
    assert run(["--help"], tmp_path) == {"opened": [], "babel": False}


@pytest.mark.slow
def test_an_english_build_reads_no_catalog(project: Path) -> None:
    assert run(["build", SEED_ISSUE, "--out", "out"], project)["opened"] == []


@pytest.mark.slow
def test_a_german_build_reads_the_german_catalog_only(project: Path) -> None:
    path = project / "newsletter.yaml"
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**settings, "language": "de"}), encoding="utf-8")

    loaded = run(["build", SEED_ISSUE, "--out", "out"], project)

    assert loaded["opened"] == ["de/LC_MESSAGES/newsletter.mo"]
    email = project / "out" / "stem-cells-in-breast-milk" / "email.txt"
    assert "26. November 2026" in email.read_text(encoding="utf-8")
