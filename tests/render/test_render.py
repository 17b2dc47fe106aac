"""The render pipeline: Markdown to blocks, one compile, cheap personalisation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.errors import IssueFileError
from newsletter.models import ButtonBlock, ImageBlock, Personalization, TextBlock
from newsletter.render.compile import compile_issue, template_environment
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from tests.conftest import SEED_ISSUE


def issue_file(project: Path, body: str, front_matter: str = "title: Test issue\n") -> Path:
    path = project / "issues" / "2026-12-01-test.md"
    path.write_text(f"---\n{front_matter}---\n{body}", encoding="utf-8")
    return path


def render(project: Path, config: Config, body: str, **personal: str) -> tuple[str, str]:
    issue = read_issue(issue_file(project, body), topics=config.topic_ids)
    recipient = Personalization(email=personal.pop("email", "ann@example.org"), **personal)
    return Personalizer(compile_issue(issue, config)).render(recipient)


def test_body_splits_into_text_image_and_button_blocks(project: Path, config: Config) -> None:
    path = issue_file(
        project,
        'Intro *text*.\n\n![A mother and baby](images/logo.png "Caption")\n\n'
        "[Donate milk](https://example.org/donate){.button}\n\nMore text.\n",
    )
    issue = read_issue(path, topics=config.topic_ids)
    kinds = [type(block) for block in issue.blocks]
    assert kinds == [TextBlock, ImageBlock, ButtonBlock, TextBlock]
    assert issue.blocks[1].image.alt == "A mother and baby"
    assert issue.blocks[1].image.caption == "Caption"
    assert issue.blocks[2] == ButtonBlock(text="Donate milk", url="https://example.org/donate")


def test_raw_html_in_markdown_is_escaped(project: Path, config: Config) -> None:
    html, _text = render(project, config, "Hi <script>alert(1)</script> there.\n")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_names_are_escaped_in_html_and_plain_in_text(project: Path, config: Config) -> None:
    html, text = render(project, config, "Hello.\n", name="<b>Ann</b> & Co")
    assert "Hi &lt;b&gt;Ann&lt;/b&gt;," in html
    assert "Hi <b>Ann</b>," in text


def test_every_marker_is_filled_and_links_land_in_both_parts(project: Path, config: Config) -> None:
    html, text = render(
        project,
        config,
        "Hello.\n",
        name="Ann Lee",
        unsubscribe_url="https://x.example/u/T1?a=1&b=2",
        preferences_url="https://x.example/p/P1",
        view_url="https://x.example/archive/test",
    )
    for part in (html, text):
        assert "[[" not in part
    assert 'href="https://x.example/u/T1?a=1&amp;b=2"' in html
    assert "Unsubscribe: https://x.example/u/T1?a=1&b=2" in text
    assert "Manage preferences: https://x.example/p/P1" in text
    assert "Hi Ann," in text
    assert "ann@example.org subscribed to Breastfeeding World" in " ".join(text.split())


def test_greeting_falls_back_when_there_is_no_name(project: Path, config: Config) -> None:
    html, text = render(project, config, "Hello.\n")
    assert "Hi there," in text and "Hi there," in html


def test_plain_text_has_numbered_link_references(project: Path, config: Config) -> None:
    _, text = render(
        project,
        config,
        "Read [the study](https://example.org/a) and "
        "[this one](https://example.org/b), then [the study](https://example.org/a) "
        "again. Or https://example.org/c.\n\n## Next\n\n- one\n- two\n",
    )
    assert "Read the study [1] and this one [2], then the study [1] again." in text
    assert "Links:\n[1] https://example.org/a\n[2] https://example.org/b\n" in text
    assert "Next\n----\n\n- one\n- two" in text


def test_local_images_become_urls_under_assets_url(project: Path, config: Config) -> None:
    html, _ = render(project, config, "![Logo](images/logo.png)\n")
    assert re.search(
        r'src="https://news\.breastfeedingworld\.example/assets/logo-[0-9a-f]{12}\.png"', html
    )
    assert 'alt="Logo"' in html


def test_assets_base_url_can_be_overridden_for_the_preview(project: Path, config: Config) -> None:
    issue = read_issue(project / SEED_ISSUE, topics=config.topic_ids)
    compiled = compile_issue(issue, config, assets_base_url="http://127.0.0.1:8000/assets")
    assert re.search(
        r'src="http://127\.0\.0\.1:8000/assets/stem-cells-hero-[0-9a-f]{12}\.jpg"', compiled.html
    )
    assert {image.source.name for image in compiled.images} == {
        "logo.png",
        "stem-cells-hero.jpg",
        "author-hazem-barmada.png",
    }
    assert {path.parent for path in compiled.assets} == {project.resolve() / "build" / "assets"}


def test_image_outside_the_project_is_refused(
    project: Path, config: Config, tmp_path: Path
) -> None:
    (tmp_path / "secret.png").write_bytes(b"x")
    issue = read_issue(issue_file(project, "![x](../../secret.png)\n"), topics=config.topic_ids)
    with pytest.raises(IssueFileError, match="is outside the newsletter folder"):
        compile_issue(issue, config)


def test_project_template_overrides_one_theme_file(project: Path, config: Config) -> None:
    (project / "templates" / "partials").mkdir(parents=True)
    (project / "templates" / "partials" / "header.mjml.j2").write_text(
        "<mj-section><mj-column><mj-text>Our own header</mj-text></mj-column></mj-section>\n"
    )
    html, _ = render(project, config, "Hello.\n")
    assert "Our own header" in html
    assert "About the author" not in html  # the issue has no author...
    assert "Unsubscribe</a>" in html  # ...but the bundled footer is still used


def test_html_keeps_media_queries_and_inlines_styles(project: Path, config: Config) -> None:
    html, _ = render(project, config, "## A heading\n\nText with [a link](https://example.org).\n")
    assert "@media (prefers-color-scheme: dark)" in html
    assert "@media only screen and (min-width:480px)" in html
    assert '<h2 style="font-family: Helvetica' in html  # inlined from mj-style inline
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<html lang="en"' in html


def test_seed_issue_has_the_whole_theme(project: Path, config: Config) -> None:
    issue = read_issue(project / SEED_ISSUE, topics=config.topic_ids)
    compiled = compile_issue(issue, config)
    html = compiled.html
    assert "<title>Stem Cells: The Medicine in Breast Milk?</title>" in html
    assert "Breast milk is food, and it may be medicine too." in html  # hidden preheader
    assert 'alt="Illustration of round cells in shades of pink' in html
    assert "About the author" in html and "Gulf Coast Stem Cell" in html
    assert ">Share your brelfie with #BreastfeedingWorld<" in html
    assert 'href="https://www.facebook.com/breastfeedingworld"' in html
    assert "PO Box 1234, Vineyard Haven" in html
    assert [h.text for h in issue.headings] == [
        "What are stem cells?",
        "How do we know stem cells are in breast milk?",
        "The right type of stem cell",
        "What other medicines are in breast milk?",
    ]
    assert "Leave a Reply" not in issue.path.read_text()


def test_personalisation_reuses_one_compile(project: Path, config: Config) -> None:
    issue = read_issue(project / SEED_ISSUE, topics=config.topic_ids)
    personalizer = Personalizer(compile_issue(issue, config))
    first, _ = personalizer.render(Personalization(email="a@example.org", name="Ann"))
    second, _ = personalizer.render(Personalization(email="b@example.org", name="Bo"))
    assert "Hi Ann," in first and "Hi Bo," in second
    assert first.replace("Ann", "Bo").replace("a@example", "b@example") == second


def test_a_template_compiled_for_the_text_part_is_still_escaped_in_html(
    config: Config,
) -> None:
    # Compiled templates are cached on disk across processes; the text part's
    # environment does not escape, so its compiled code must never serve the HTML one.
    (config.templates_dir / "shared.j2").write_text("{{ value }}", encoding="utf-8")

    as_text = template_environment(config, text=True).get_template("shared.j2")
    as_html = template_environment(config).get_template("shared.j2")

    assert as_text.render(value="<b>") == "<b>"
    assert as_html.render(value="<b>") == "&lt;b&gt;"


# -- the garbage collector is paused only while a body is parsed -------------------------


def test_the_collector_is_back_after_reading_even_from_threads_and_on_errors(
    project: Path, config: Config
) -> None:
    import gc
    from concurrent.futures import ThreadPoolExecutor

    good = issue_file(project, "Hello [there](https://example.org/).\n" * 200)
    bad = project / "issues" / "2026-12-02-bad.md"  # refused while its body is parsed
    bad.write_text("---\ntitle: Deep\n---\n" + "*" * 80 + "x" + "*" * 80, encoding="utf-8")

    def read(path: Path) -> bool:
        try:
            read_issue(path, topics=config.topic_ids)
        except IssueFileError:
            return False
        return True

    assert gc.isenabled()
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(read, [good, bad] * 20))
    assert outcomes == [True, False] * 20
    assert gc.isenabled()

    gc.disable()  # a program that runs without the collector keeps it off
    try:
        read(good)
        assert not gc.isenabled()
    finally:
        gc.enable()
