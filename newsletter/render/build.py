"""Writer: ``newsletter build`` writes an issue's files for inspection and hosting.

``DIR/<slug>/email.html`` and ``email.txt`` (filled with a sample recipient, so they
open in a browser and an editor), ``email.mjml`` (the compiled intermediate, for the
official MJML validator), and the local images under ``DIR/assets/``, resized and under
content-hashed names (:mod:`newsletter.render.images`), ready to upload to ``assets_url``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.render.compile import compile_issue
from newsletter.render.images import copy_assets
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from newsletter.tokens import sample_personalization


@dataclass(frozen=True)
class BuildResult:
    folder: Path
    files: dict[str, int]  # path -> size in bytes
    assets: tuple[Path, ...]


def build_issue(path: Path, config: Config, out_dir: Path) -> BuildResult:
    issue = read_issue(path, topics=config.topic_ids)
    compiled = compile_issue(issue, config)
    html, text = Personalizer(compiled).render(sample_personalization(config, issue.slug))
    folder = out_dir / issue.slug
    outputs = {"email.html": html, "email.txt": text, "email.mjml": compiled.mjml}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, content in outputs.items():
            target = folder / name
            target.write_text(content, encoding="utf-8")
            files[str(target)] = len(content.encode("utf-8"))
        copied = copy_assets(list(compiled.images), out_dir / "assets")
    except OSError as error:
        raise NewsletterError(
            f"{out_dir}: cannot write the build ({error.strerror}); "
            "choose another folder with --out"
        ) from None
    return BuildResult(folder=folder, files=files, assets=tuple(copied))
