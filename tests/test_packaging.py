"""A plain install works: the wheel, installed into a fresh virtual environment by that
environment's own pip (not upgraded: the pip a user has), runs ``new --from`` on a saved
page and ``build`` on the seed issue.

Everything the package imports must be declared in pyproject.toml: a module that only
arrives through another package's extra (``lxml_html_clean``, through jusText's) is
skipped by older resolvers, and ``new --from`` then failed on a plain install. PyPI is
reached through pip, with pip's own cache, so a second run installs from the cache.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEED_ISSUE

BLOG_POST = ROOT / "tests" / "fixtures" / "blog" / "stem-cells-in-breast-milk.html"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(package: Path) -> set[str]:
    """The top-level modules the package's own code imports, the standard library aside."""
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {package.name}


def test_every_module_the_package_imports_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    # The extras that bring what one feature imports (PostgreSQL, the SES provider).
    requirements = project["dependencies"] + extras["postgres"] + extras["ses"]
    declared = {_canonical(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0]) for line in requirements}
    owners = importlib.metadata.packages_distributions()

    undeclared = {
        module: sorted(owners.get(module, ["?"]))
        for module in imported_modules(ROOT / "newsletter")
        if not {_canonical(name) for name in owners.get(module, [])} & declared
    }

    assert undeclared == {}, "imported but not in pyproject.toml's dependencies"


def run(command: list[str | Path], cwd: Path, timeout: float = 900) -> str:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "PYTHON", "NEWSLETTER_"))
    }
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"  # the pip a user has, left as it is
    finished = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, f"{' '.join(map(str, command))}:\n{output[-3000:]}"
    return output


@pytest.mark.slow  # builds a wheel and installs it with its dependencies: a few minutes
@pytest.mark.timeout(1200)  # pip's cache makes it about two; a cold cache downloads all
def test_the_wheel_installed_by_a_fresh_pip_imports_a_page_and_builds_an_issue(
    tmp_path: Path, project: Path
) -> None:
    source = tmp_path / "source"  # a clean copy: no .venv, build/ or egg-info in the wheel
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "node_modules", "*.egg-info", "__pycache__", "outbox"
        ),
    )
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, source], tmp_path)
    [wheel] = dist.glob("newsletter-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], tmp_path)  # with the pip Python bundles
    bin_dir = venv / "bin"
    run([bin_dir / "python", "-m", "pip", "install", wheel], tmp_path)

    saved = tmp_path / "saved" / "post.html"
    (saved.parent / "post_files").mkdir(parents=True)
    page = BLOG_POST.read_text(encoding="utf-8")
    saved.write_text(page.replace("/wp-content/uploads/2017/03/", "post_files/"), "utf-8")
    image = saved.parent / "post_files" / "glowing-cells.png"
    shutil.copy(project / "issues" / "images" / "logo.png", image)
    imported = run([bin_dir / "newsletter", "new", "--from", saved], project)
    built = run([bin_dir / "newsletter", "build", SEED_ISSUE], project)

    [issue] = [path for path in (project / "issues").glob("*.md") if "medicine" in path.name]
    assert f"created {issue}" in imported, imported
    assert re.search(r"downloaded .*/issues/images/\S*glowing-cells\.png", imported), imported
    assert "Stem cells" in issue.read_text(encoding="utf-8")
    assert "image(s) copied to" in built, built
    assert any((project / "build").rglob("*.html"))
    # The compiled catalogs travel in the wheel: the same issue in German.
    config = project / "newsletter.yaml"
    config.write_text(config.read_text("utf-8").replace("language: en", "language: de"), "utf-8")
    run([bin_dir / "newsletter", "build", SEED_ISSUE, "--out", "german"], project)
    [text] = (project / "german").rglob("email.txt")
    assert "Abmelden: " in text.read_text("utf-8") and "26. November 2026" in text.read_text(
        "utf-8"
    )
