"""The preview's pages over HTTP: every view, the error panel, and recovery."""

from __future__ import annotations

import re
from pathlib import Path

from werkzeug.test import Client

from newsletter.config import load_config
from newsletter.preview import Workspace
from newsletter.preview.app import PreviewApp
from newsletter.render.checks import check_issue
from newsletter.tokens import DEVELOPMENT_SECRET, Signer
from tests.preview.conftest import PAGE, SEED_STEM, page_text, saved, text_of
from tests.render.test_images import bomb_png


def test_index_lists_every_issue_newest_first_with_links(
    client: Client, workspace: Workspace, project: Path
) -> None:
    saved(
        workspace, project / "issues/2026-10-01-autumn.md", "---\ntitle: Autumn notes\n---\nHi.\n"
    )
    saved(workspace, project / "issues/2026-12-24-broken.md", "no front matter\n")

    response = client.get("/")

    assert response.status_code == 200
    text = text_of(response.text)
    assert text.index("2026-12-24") < text.index("Stem Cells: The Medicine") < text.index("Autumn")
    assert (
        "2026-12-24 2026-12-24-broken issues/2026-12-24-broken.md line 1: an issue starts" in text
    )
    assert f'href="/issue/{SEED_STEM}"' in response.text
    assert 'href="/issue/2026-10-01-autumn"' in response.text


def test_index_without_issues_says_how_to_start_one(client: Client, project: Path) -> None:
    for path in (project / "issues").glob("*.md"):
        path.unlink()

    assert 'Start one with newsletter new "Title of the issue"' in page_text(client, "/")


def test_page_shows_the_inbox_row_as_a_reader_sees_it(client: Client) -> None:
    text = page_text(client)

    assert "Breastfeeding World Stem Cells: The Medicine in Breast Milk? – Breast milk is food" in (
        text
    )
    assert "26 Nov" in text


def test_page_has_phone_desktop_and_dark_frames_in_sandboxes(client: Client) -> None:
    html = client.get(PAGE).text

    frames = re.findall(r"<iframe [^>]*>", html)
    assert len(frames) == 4
    for frame in frames:
        assert 'sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"' in frame
    assert sum('width="375"' in frame for frame in frames) == 2
    assert sum("scheme=dark" in frame for frame in frames) == 2


def test_email_frame_is_the_personalised_email_with_local_images(client: Client) -> None:
    response = client.get(f"{PAGE}/email.html?scheme=light")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    html = response.text
    assert '<base target="_blank">' in html
    assert "Hi Sam," in html
    assert "[[html:" not in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert images and all(
        re.fullmatch(r"/assets/[a-z-]+-[0-9a-f]{12}\.(png|jpg)", src) for src in images
    )
    for src in images:
        with client.get(src) as image:
            assert image.status_code == 200
            assert image.mimetype.startswith("image/")


def test_only_images_inside_the_project_are_served(client: Client, project: Path) -> None:
    (project / ".env").write_text("SECRET=1", encoding="utf-8")
    (project / "hidden").mkdir()
    (project / "hidden" / ".secret.png").write_bytes(b"png")

    with client.get("/assets/issues/images/logo.png") as logo:
        assert logo.status_code == 200
    for url in (
        "/assets/newsletter.yaml",
        "/assets/.env",
        "/assets/hidden/.secret.png",
        "/assets/../project/issues/images/logo.png",
        "/assets/%2e%2e/etc/passwd.png",
        "/assets/issues/images/missing.png",
        "/assets/newsletter.db%00.png",
        "/assets/issues/images/" + "x" * 300 + ".png",
        "/assets/issues/images/" + "x/" * 3000 + "a.png",
    ):
        assert client.get(url).status_code == 404, url


def test_dark_frame_always_applies_the_dark_rules_and_the_light_one_never(client: Client) -> None:
    dark = client.get(f"{PAGE}/email.html?scheme=dark").text
    light = client.get(f"{PAGE}/email.html?scheme=light").text

    assert "prefers-color-scheme" not in dark
    assert "prefers-color-scheme" not in light
    assert '<meta name="color-scheme" content="dark">' in dark
    assert '<meta name="color-scheme" content="light">' in light
    assert "@media (min-width: 0px) {\n    .nl-body" in dark
    assert "@media (max-width: 0px) {\n    .nl-body" in light
    assert client.get(f"{PAGE}/email.html?scheme=sepia").status_code == 404


def test_plain_text_view_and_file(client: Client) -> None:
    text = page_text(client)
    assert "BREASTFEEDING WORLD Breast milk is food" in text
    assert "Unsubscribe: https://news.breastfeedingworld.example/u/" in text

    response = client.get(f"{PAGE}/email.txt")
    assert response.mimetype == "text/plain"
    assert response.text.startswith("BREASTFEEDING WORLD\n")
    assert "Hi Sam,\n" in response.text


def test_headers_view_shows_the_headers_as_they_will_be_sent(client: Client) -> None:
    html = client.get(PAGE).text
    rows = dict(
        re.findall(r"<tr><th scope=\"row\">([^<]+)</th><td><code>([^<]*)</code></td></tr>", html)
    )

    assert rows["From"] == "Breastfeeding World &lt;letters@breastfeedingworld.example&gt;"
    assert rows["To"] == "Sam Reader &lt;reader@example.org&gt;"
    assert rows["Reply-To"] == "hello@breastfeedingworld.example"
    assert rows["Subject"] == "Stem Cells: The Medicine in Breast Milk?"
    unsubscribe = re.fullmatch(
        r"&lt;https://news\.breastfeedingworld\.example/u/([^&]+)&gt;, "
        # The mailto carries the copy's signed token, as a sent copy's does.
        r"&lt;mailto:unsubscribe@breastfeedingworld\.example\?subject=unsubscribe%20"
        r"0-0-[0-9a-z]+&gt;",
        rows["List-Unsubscribe"],
    )
    assert unsubscribe is not None
    assert Signer(DEVELOPMENT_SECRET).read_unsubscribe_token(unsubscribe[1]).subscriber_id == 0
    assert rows["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert rows["List-Id"] == (
        "Breastfeeding World &lt;breastfeeding-world.news.breastfeedingworld.example&gt;"
    )
    assert rows["Feedback-ID"] == (
        "stem-cells-in-breast-milk:research:breastfeeding-world:breastfeedingworld.example"
    )


def test_check_results_are_those_of_newsletter_check(
    client: Client, workspace: Workspace, issue_file: Path, project: Path
) -> None:
    source = issue_file.read_text(encoding="utf-8")
    source = source.replace("preheader: Breast milk is food", "# preheader: Breast milk is food")
    source = source.replace("## What are stem cells?", "#### What are stem cells?")
    saved(workspace, issue_file, source)

    text = page_text(client)

    findings, _ = check_issue(issue_file, load_config(project / "newsletter.yaml"))
    assert {finding.level for finding in findings} == {"error", "warning"}
    assert "1 error, 1 warning" in text
    for finding in findings:
        assert f"{finding.level} {finding.message}" in text


def test_size_is_measured_against_gmail_clipping(
    client: Client, workspace: Workspace, issue_file: Path
) -> None:
    text = page_text(client)
    assert re.search(r"HTML size \d\d\.\d KB of the 102 KB at which Gmail clips", text)
    assert "clipped" not in text

    paragraph = "A long paragraph that makes this issue too big for Gmail. " * 40
    saved(workspace, issue_file, issue_file.read_text() + ("\n\n" + paragraph) * 50)

    text = page_text(client)
    assert re.search(r"HTML size 1\d\d\.\d KB of the 102 KB at which Gmail clips clipped", text)
    assert "Gmail clips above about 102 KB and hides the unsubscribe link" in text


def test_preview_as_an_address_without_a_store_uses_sample_data(client: Client) -> None:
    response = client.get(f"{PAGE}?as=Jane Doe <jane@example.org>")
    text = text_of(response.text)

    assert "jane@example.org: sample data" in text
    assert "Jane Doe <jane@example.org>" in text  # the To header
    email = client.get(f"{PAGE}/email.html?scheme=light&as=Jane Doe <jane@example.org>").text
    assert "Hi Jane," in email
    assert "because jane@example.org subscribed" in email


def test_preview_as_given_on_the_command_line_is_the_default(project: Path) -> None:
    workspace = Workspace(project / "newsletter.yaml", default_address="kim@example.org")
    client = Client(PreviewApp(workspace))

    assert "kim@example.org: sample data" in page_text(client)
    assert "because kim@example.org subscribed" in client.get(f"{PAGE}/email.html").text
    assert "reader@example.org: sample data" in page_text(client, f"{PAGE}?as=")


def test_preview_as_something_that_is_no_address_says_so(client: Client) -> None:
    assert "'jane' is not an email address: showing sample data" in page_text(
        client, f"{PAGE}?as=jane"
    )


def test_bad_yaml_in_the_issue_shows_the_error_panel_then_recovers(
    client: Client, workspace: Workspace, issue_file: Path
) -> None:
    good = issue_file.read_text(encoding="utf-8")
    assert "has a problem" not in page_text(client)  # the editor had the page open
    saved(workspace, issue_file, good.replace("topics: [research]", "topics: [research"))

    response = client.get(PAGE)
    assert response.status_code == 200
    text = text_of(response.text)
    assert "The issue file has a problem" in text
    assert re.search(
        r" issues/2026-11-26-stem-cells-in-breast-milk\.md:6: .*fix the YAML syntax on that line",
        text,
    )
    assert "Below is the last version that rendered." in text
    assert "Stem Cells: The Medicine in Breast Milk?" in text  # the last good version

    saved(workspace, issue_file, good.replace("## What are stem cells?", "## What is a stem cell?"))

    text = page_text(client)
    assert "has a problem" not in text
    assert "What is a stem cell?" in client.get(f"{PAGE}/email.html").text


def test_a_decompression_bomb_shows_the_error_panel(
    client: Client, workspace: Workspace, issue_file: Path, project: Path
) -> None:
    bomb_png(project / "issues" / "images" / "bomb.png")
    text = issue_file.read_text(encoding="utf-8")
    saved(workspace, issue_file, text + "\n![A chart](images/bomb.png)\n")

    response = client.get(PAGE)

    assert response.status_code == 200
    assert re.search(r"issues/images/bomb\.png: .*too many pixels", text_of(response.text))


def test_an_issue_that_never_rendered_shows_only_the_panel(
    client: Client, workspace: Workspace, project: Path
) -> None:
    saved(workspace, project / "issues/2026-12-01-draft.md", "---\ntitle: [unclosed\n---\n")

    text = page_text(client, "/issue/2026-12-01-draft")

    assert "The issue file has a problem" in text
    assert "last version" not in text
    assert "not rendered yet" in client.get("/issue/2026-12-01-draft/email.html").text


def test_template_error_names_the_template_and_line_then_recovers(
    client: Client, workspace: Workspace, project: Path
) -> None:
    footer = project / "templates/partials/footer.mjml.j2"
    saved(workspace, footer, "<mj-section>\n  {{ recipient.nickname }\n</mj-section>\n")

    text = page_text(client)
    assert "A template has a problem" in text
    assert "footer.mjml.j2:2: template syntax error" in text

    footer.unlink()
    workspace.changes.notify()
    assert "has a problem" not in page_text(client)


def test_bad_newsletter_yaml_shows_on_the_index_and_the_page(
    client: Client, workspace: Workspace, project: Path
) -> None:
    config = project / "newsletter.yaml"
    good = config.read_text(encoding="utf-8")
    saved(workspace, config, good.replace("site_url: https://", "site_url: ftp://"))

    for url in ("/", PAGE):
        text = page_text(client, url)
        assert "newsletter.yaml has a problem" in text
        assert "newsletter.yaml: site_url: must be an absolute http(s) URL" in text

    saved(workspace, config, good)
    assert "has a problem" not in page_text(client)


def test_a_deleted_issue_says_so_and_comes_back_when_restored(
    client: Client, workspace: Workspace, issue_file: Path
) -> None:
    source = issue_file.read_text(encoding="utf-8")
    issue_file.unlink()
    workspace.changes.notify()

    response = client.get(PAGE)
    assert response.status_code == 404
    assert f"No such issue issues/{SEED_STEM}.md does not exist: was it renamed or deleted?" in (
        text_of(response.text)
    )

    saved(workspace, issue_file, source)
    assert "No such issue" not in page_text(client)


def test_unknown_issues_and_foreign_hosts_are_refused(client: Client) -> None:
    assert client.get("/issue/2020-01-01-nothing").status_code == 404
    assert client.get("/issue/2020-01-01-nothing/email.html").status_code == 404
    assert client.get("/issue/..%2fnewsletter").status_code == 404
    assert client.get(PAGE, headers={"Host": "attacker.example"}).status_code == 421
    assert client.get(PAGE, headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client.get(PAGE, headers={"Host": "[::1]:8000"}).status_code == 200
    assert client.post(PAGE).status_code == 405


def test_nothing_on_the_page_loads_from_the_internet(client: Client) -> None:
    html = client.get(PAGE).text
    css = client.get("/_preview/static/preview.css").text
    script = client.get("/_preview/static/preview.js").text

    references = re.findall(r'(?:src|href|action)="([^"]*)"', html)
    references += re.findall(r"url\(([^)]*)\)", css)
    references += re.findall(r"""(?:fetch|EventSource)\(\s*["'`]([^"'`]*)""", script)
    assert references
    assert [ref for ref in references if re.match(r"(https?:)?//", ref)] == []
    policy = client.get(PAGE).headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "http" not in policy


def test_images_are_served_so_that_no_browser_runs_them(client: Client, project: Path) -> None:
    (project / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', encoding="utf-8"
    )

    with client.get("/assets/logo.svg") as response:
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script" not in policy


def test_a_preview_on_another_address_answers_only_to_names_it_was_given(
    workspace: Workspace,
) -> None:
    client = Client(PreviewApp(workspace, allowed_hosts=["192.0.2.5", "Box.Local"]))

    assert client.get(PAGE, headers={"Host": "192.0.2.5:8000"}).status_code == 200
    assert client.get(PAGE, headers={"Host": "box.local:8000"}).status_code == 200
    assert client.get(PAGE, headers={"Host": "localhost:8000"}).status_code == 200
    refused = client.get(PAGE, headers={"Host": "rebound.attacker.example"})
    assert refused.status_code == 421
    assert "--allow-host NAME" in refused.get_data(as_text=True)


def checks_card(html: str) -> str:
    match = re.search(r'<section class="checks" id="checks".*?</section>', html, re.DOTALL)
    assert match is not None, "no check card on the page"
    return text_of(match[0])


def test_the_check_card_does_not_say_all_is_well_while_the_error_panel_shows(
    client: Client, workspace: Workspace, issue_file: Path
) -> None:
    good = issue_file.read_text(encoding="utf-8")
    assert "No problems found." in checks_card(client.get(PAGE).text)
    saved(workspace, issue_file, good.replace("topics: [research]", "topics: [research"))

    card = checks_card(client.get(PAGE).text)

    assert "No problems found" not in card
    assert "Not checked: the issue as saved does not render (see the error above)." in card

    saved(workspace, issue_file, good)
    assert "No problems found." in checks_card(client.get(PAGE).text)


def test_a_sequences_step_is_previewed_like_an_issue(project: Path) -> None:
    # newsletter preview automations/welcome/01-thanks.md: the step is listed, shown in
    # every view and checked, although it lives outside issues/.
    step = project / "automations/welcome/01-thanks.md"
    step.parent.mkdir(parents=True)
    step.write_text(
        "---\ntitle: Thanks for joining\npreheader: What to expect from us.\n"
        "date: 2026-12-01\nafter: 0 days\n---\n\nThanks for joining us: one letter a month.\n",
        encoding="utf-8",
    )
    client = Client(PreviewApp(Workspace(project / "newsletter.yaml", issue=step)))

    assert 'href="/issue/01-thanks"' in client.get("/").text
    text = page_text(client, "/issue/01-thanks")
    assert "Thanks for joining – What to expect from us." in text
    assert "Thanks for joining us: one letter a month." in text
    assert "newsletter check No problems found." in text
