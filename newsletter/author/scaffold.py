"""``newsletter init`` and ``newsletter new``: starter folders and issue files."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

from newsletter.errors import NewsletterError

STARTER = Path(__file__).parent.parent / "starter"
# Starter files are shipped as "dot-NAME" and created as ".NAME": wheels leave out
# package files whose names start with a dot.
DOT_PREFIX = "dot-"


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:60].rstrip("-") or "issue"


def init_project(folder: Path, *, today: dt.date | None = None) -> list[Path]:
    """Create a newsletter folder that builds out of the box; never overwrite anything."""
    if (folder / "newsletter.yaml").exists():
        raise NewsletterError(
            f"{folder / 'newsletter.yaml'} already exists; choose an empty folder"
        )
    created = []
    for source in sorted(STARTER.rglob("*")):
        if source.is_dir() or source.name == "issue.md":
            continue
        target = folder / source.relative_to(STARTER)
        if target.name.startswith(DOT_PREFIX):
            target = target.with_name("." + target.name.removeprefix(DOT_PREFIX))
        if target.exists():
            raise NewsletterError(f"{target} already exists; choose an empty folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        created.append(target)
    created.append(new_issue(folder / "issues", "Welcome to our newsletter", today=today))
    return created


def start_repository(folder: Path) -> bool:
    """``git init`` in ``folder`` when git is installed and the folder is not already in a
    repository (its .gitignore then keeps the database, builds and outbox out). Whether
    it did."""
    git = shutil.which("git")
    if git is None:
        return False
    inside = subprocess.run(
        [git, "-C", str(folder), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode == 0:
        return False
    started = subprocess.run(
        [git, "init", "-q", str(folder)], capture_output=True, text=True, check=False
    )
    return started.returncode == 0


def new_issue(issues_dir: Path, title: str, *, today: dt.date | None = None) -> Path:
    """A dated issue file from the starter template."""
    if not title.strip() or "\n" in title:
        raise NewsletterError("the title must be one non-empty line")
    date = today or dt.date.today()
    path = issues_dir / f"{date.isoformat()}-{slugify(title)}.md"
    if path.exists():
        raise NewsletterError(f"{path} already exists; pick another title or edit that file")
    template = (STARTER / "issue.md").read_text(encoding="utf-8")
    quoted = title.replace("\\", "\\\\").replace('"', '\\"')
    issues_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(
        template.replace("{title}", quoted).replace("{date}", date.isoformat()), encoding="utf-8"
    )
    return path
