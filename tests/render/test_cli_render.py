"""`newsletter init/new/build/check` as a user runs them: exact output and exit codes."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.send.providers import PROVIDERS
from tests.conftest import SEED_ISSUE, skip_or_fail


def write_issue(project: Path, front_matter: str, body: str = "Hello.\n") -> str:
    path = project / "issues" / "2026-12-01-test.md"
    path.write_text(f"---\n{front_matter}---\n{body}", encoding="utf-8")
    return "issues/2026-12-01-test.md"


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    def commands(group, prefix=()):
        for name, command in group.commands.items():
            yield (*prefix, name), command
            if hasattr(command, "commands"):
                yield from commands(command, (*prefix, name))

    cli.load_all()
    for path, command in commands(cli):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert command.help, f"{' '.join(path)} has no help text"
        if not hasattr(command, "commands"):
            assert "Example" in result.output, f"{' '.join(path)} --help shows no example"


def test_build_writes_html_text_and_mjml_and_copies_images(
    runner: CliRunner, project: Path
) -> None:
    result = runner.invoke(cli, ["build", SEED_ISSUE, "--out", "out"])
    assert result.exit_code == 0, result.output
    folder = project / "out" / "stem-cells-in-breast-milk"
    assert result.output.splitlines()[0].startswith("out/stem-cells-in-breast-milk/email.html  ")
    assert "3 image(s) copied to out/assets" in result.output
    html = (folder / "email.html").read_text()
    assert "<h1" in html and "Stem Cells: The Medicine in Breast Milk?" in html
    # Images under content-hashed names, resized for the width they are shown at.
    hero = re.search(
        r"https://news\.breastfeedingworld\.example/assets/(stem-cells-hero-[0-9a-f]{12}\.jpg)",
        html,
    )
    assert hero is not None
    assert (project / "out" / "assets" / hero[1]).is_file()
    assert (folder / "email.txt").read_text().startswith("BREASTFEEDING WORLD\n")
    assert (folder / "email.mjml").read_text().lstrip().startswith("<mjml")


def test_check_passes_on_the_seed_issue(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", SEED_ISSUE])
    assert result.exit_code == 0
    assert result.output == f"{SEED_ISSUE}: ok\n"


def test_check_reports_each_problem_as_file_level_message_and_exits_1(
    runner: CliRunner, project: Path
) -> None:
    issue = write_issue(
        project,
        "title: T\nsubject: " + "x" * 90 + "\n",
        "## One\n\n#### Too deep\n\n![](images/logo.png)\n\n[rel](/about)\n",
    )
    result = runner.invoke(cli, ["check", issue])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{issue}: warning: the subject is 90 characters; inboxes cut it after about 78" in lines
    assert (
        f"{issue}: warning: no preheader: inboxes will show the first text of the email "
        "instead; set 'preheader'"
    ) in lines
    assert f"{issue}:7: error: heading 'Too deep' skips from level 2 to 4; use ###" in lines
    assert (
        f"{issue}: error: link URL '/about' is not an absolute http(s) URL: it cannot work "
        "from an inbox"
    ) in lines
    assert (
        f"{issue}: error: image images/logo.png has no alt text; write ![what it shows](...)"
        in lines
    )


def test_check_flags_html_over_gmail_clipping_limit(runner: CliRunner, project: Path) -> None:
    paragraph = "Breast milk contains stem cells, immune cells and much more. " * 20
    issue = write_issue(project, "title: Long\npreheader: p\n", (paragraph + "\n\n") * 90)
    result = runner.invoke(cli, ["check", issue])
    assert result.exit_code == 1
    assert "error: HTML is 1" in result.output
    assert "Gmail clips above about 102 KB and hides the unsubscribe link" in result.output


def test_check_flags_a_footer_without_unsubscribe_link_or_postal_address(
    runner: CliRunner, project: Path
) -> None:
    (project / "templates" / "partials").mkdir(parents=True)
    (project / "templates" / "partials" / "footer.mjml.j2").write_text(
        "<mj-section><mj-column><mj-text>Bye</mj-text></mj-column></mj-section>\n"
    )
    result = runner.invoke(cli, ["check", SEED_ISSUE])
    assert result.exit_code == 1
    assert (
        f"{SEED_ISSUE}: error: the HTML part has no unsubscribe link; keep "
        "{{ recipient.unsubscribe_url }} in the template"
    ) in result.output
    assert f"{SEED_ISSUE}: error: the HTML part has no postal address (CAN-SPAM)" in result.output
    assert "the text part has no unsubscribe link" not in result.output


def test_check_flags_mjml_outside_the_component_set(runner: CliRunner, project: Path) -> None:
    (project / "templates" / "partials").mkdir(parents=True)
    (project / "templates" / "partials" / "header.mjml.j2").write_text(
        '<mj-section padding="0 24px"><mj-column><mj-txt>Hi</mj-txt>'
        '<mj-image src="https://example.org/a.png" alt="A" colour="red" />'
        "</mj-column></mj-section>\n"
    )
    result = runner.invoke(cli, ["check", SEED_ISSUE])
    assert result.exit_code == 1
    assert "email.mjml:43: error: <mj-txt> is not an MJML component" in result.output
    assert "email.mjml:43: error: <mj-image> has no attribute 'colour'" in result.output
    assert "<mj-section padding='0 24px'>: write 0px, not 0" in result.output


def test_unknown_front_matter_key_names_file_and_key(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, "title: T\nauthor:\n  name: A\n  nmae: B\n")
    result = runner.invoke(cli, ["build", issue])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {issue}: front matter: author.nmae: unknown key; check its spelling\n"
    )


def test_bad_yaml_in_front_matter_names_the_line(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, "title: T\npreheader: a: b\n")
    result = runner.invoke(cli, ["build", issue])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {issue}:3: mapping values are not allowed in this context; fix the YAML syntax "
        "on that line\n"
    )


def test_newline_in_subject_is_refused(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, 'title: T\nsubject: "Hi\\nBcc: all@example.org"\n')
    result = runner.invoke(cli, ["build", issue])
    assert result.exit_code == 1
    assert result.output == f"Error: {issue}: front matter: subject: must be a single line\n"


def test_unknown_topic_lists_the_known_ones(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, "title: T\ntopics: [recipes]\n")
    result = runner.invoke(cli, ["build", issue])
    assert result.output == (
        f"Error: {issue}: front matter: topics: unknown topic 'recipes'; "
        "known topics: research, stories, events\n"
    )


def test_missing_local_image_is_an_error(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, "title: T\n", "![A photo](images/nope.jpg)\n")
    result = runner.invoke(cli, ["build", issue])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {issue}: image 'images/nope.jpg' not found")


def test_bad_config_reports_every_problem_at_once(runner: CliRunner, project: Path) -> None:
    config = project / "newsletter.yaml"
    text = config.read_text().replace("letters@breastfeedingworld.example", "not-an-address")
    text = text.replace("site_url: https://", "site_url: ftp://").replace(
        "provider: outbox", "provider: pigeon"
    )
    config.write_text(text)
    result = runner.invoke(cli, ["build", SEED_ISSUE])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("Error: newsletter.yaml: from.email: not a valid address")
    assert (
        "newsletter.yaml: site_url: must be an absolute http(s) URL, like https://example.org"
        in lines
    )
    [provider] = [line for line in lines if line.startswith("newsletter.yaml: provider: ")]
    # Every provider named (the list grows as providers are added), the outbox first.
    assert provider.startswith("newsletter.yaml: provider: must be one of 'outbox', 'smtp', ")
    assert all(f"'{name}'" in provider for name in PROVIDERS), provider


def test_bad_yaml_in_config_names_the_line(runner: CliRunner, project: Path) -> None:
    (project / "newsletter.yaml").write_text("name: x\nfrom: [a\n")
    result = runner.invoke(cli, ["check", SEED_ISSUE])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {project / 'newsletter.yaml'}:3: ")


def test_no_config_found_suggests_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["build", "x.md"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: no newsletter.yaml in {tmp_path.resolve()} or any folder "
        "above it; run 'newsletter init' to create one, or pass --config\n"
    )


def test_missing_template_is_named(runner: CliRunner, project: Path) -> None:
    (project / "templates" / "email.mjml.j2").write_text('{% include "partials/nope.j2" %}\n')
    result = runner.invoke(cli, ["build", SEED_ISSUE])
    assert result.exit_code == 1
    assert result.output == (
        "Error: template 'partials/nope.j2' not found in templates/ or the bundled theme; "
        "check the name in the {% include %} or {% extends %} that uses it\n"
    )


def test_template_syntax_error_names_file_and_line(runner: CliRunner, project: Path) -> None:
    template = project / "templates" / "email.mjml.j2"
    template.write_text("<mjml>\n<mj-body>\n{% if %}\n</mj-body></mjml>\n")
    result = runner.invoke(cli, ["build", SEED_ISSUE])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {template}:3: template syntax error: Expected an expression, got 'end of "
        "statement block'\n"
    )


def test_undefined_template_variable_is_an_error(runner: CliRunner, project: Path) -> None:
    template = project / "templates" / "email.mjml.j2"
    template.write_text("<mjml>\n<mj-body>\n{{ issue.subtitle }}\n</mj-body></mjml>\n")
    result = runner.invoke(cli, ["check", SEED_ISSUE])
    assert result.exit_code == 1
    assert f"{template}:3: 'newsletter.models.Issue object' has no attribute 'subtitle'" in (
        result.output
    )


def test_debug_shows_the_traceback(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, "title: T\nbogus: 1\n")
    result = runner.invoke(cli, ["--debug", "build", issue])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "IssueFileError"


def test_usage_errors_exit_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2
    assert "Missing argument 'ISSUE'" in result.output


def test_init_creates_a_folder_that_checks_and_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "letters"])
    assert result.exit_code == 0, result.output
    assert "created letters/newsletter.yaml" in result.output
    monkeypatch.chdir(tmp_path / "letters")
    issues = sorted(str(p) for p in Path("issues").glob("*.md"))
    assert len(issues) == 1
    # It builds; check refuses only the starter text an editor must replace.
    checked = runner.invoke(cli, ["check", *issues])
    assert checked.exit_code == 1
    assert [line.split(": ", 2)[1:] for line in checked.output.splitlines()] == [
        ["error", "the preheader is the starter template's; write one sentence about this issue"],
        ["warning", "the title is the starter's ('Welcome to our newsletter')"],
        [
            "error",
            "starter template text left in the issue: 'Write your issue here in Markdown: "
            "paragraphs, **bold**, *it'; replace or delete it",
        ],
    ]
    assert runner.invoke(cli, ["build", *issues]).exit_code == 0
    again = runner.invoke(cli, ["init", "."])
    assert again.exit_code == 1
    assert "already exists; choose an empty folder" in again.output


def test_init_keeps_what_newsletter_makes_out_of_version_control(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        skip_or_fail("git is not installed (apt-get install git)")
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "letters"]).exit_code == 0
    monkeypatch.chdir(tmp_path / "letters")
    [issue] = [str(path) for path in Path("issues").glob("*.md")]
    # The editor writes the issue (check refuses the starter's text).
    Path(issue).write_text(
        "---\ntitle: Our first issue\npreheader: What we did this month.\n---\nHello.\n"
    )
    for command in (
        ["build", issue],
        ["subscribers", "import", "subscribers.csv"],
        ["send", issue, "--yes"],
    ):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0, result.output

    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip

    assert sorted(line[3:] for line in status.splitlines()) == sorted(
        [".gitignore", "issues/images/.keep", "newsletter.yaml", "subscribers.csv",
         "templates/README.md", issue]
    )  # fmt: skip
    assert Path("outbox").is_dir() and Path("build").is_dir() and Path("newsletter.db").exists()


def test_the_starter_ships_no_file_a_wheel_would_leave_out() -> None:
    # Wheels drop package files whose names start with a dot: "newsletter init" from
    # an installed package would then quietly make less than from a checkout.
    starter = Path(__file__).parents[2] / "newsletter" / "starter"
    hidden = [path for path in starter.rglob(".*") if path.name != "__pycache__"]
    assert hidden == []


def test_new_creates_a_dated_issue_that_builds(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(cli, ["new", 'Milk banks: "how" they work'])
    assert result.exit_code == 0, result.output
    path = project / "issues" / f"{dt.date.today().isoformat()}-milk-banks-how-they-work.md"
    assert result.output == f"created {path}\n"
    assert 'title: "Milk banks: \\"how\\" they work"' in path.read_text()
    assert runner.invoke(cli, ["build", str(path)]).exit_code == 0
    assert runner.invoke(cli, ["new", 'Milk banks: "how" they work']).exit_code == 1


def test_check_reports_an_unreadable_issue_as_an_error_line(
    runner: CliRunner, project: Path
) -> None:
    issue = write_issue(project, "title: T\npreheader: a: b\n")
    result = runner.invoke(cli, ["check", issue, SEED_ISSUE])
    assert result.exit_code == 1
    assert result.output == (
        f"{issue}:3: error: mapping values are not allowed in this context; fix the YAML "
        f"syntax on that line\n{SEED_ISSUE}: ok\n"
    )


def test_a_subject_with_a_control_character_is_one_error_naming_the_line(
    runner: CliRunner, project: Path
) -> None:
    issue = write_issue(project, 'title: T\nsubject: "Hi \\e[2J there"\n', "Text.\n")

    result = runner.invoke(cli, ["check", issue])

    assert result.exit_code == 1
    assert "\x1b" not in result.output
    assert result.output == (
        f"{issue}: error: front matter: subject: contains the control character U+001B, "
        "which would reach mail headers and terminals; remove it\n"
    )


def test_the_first_command_init_suggests_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "my-letter"])
    assert result.exit_code == 0, result.output

    [suggestion] = [line for line in result.output.splitlines() if line.startswith("Next: ")]
    cd, command = suggestion.removeprefix("Next: ").split(" && ", 1)
    assert cd == "cd my-letter"
    monkeypatch.chdir(tmp_path / "my-letter")
    name, *arguments = command.split()
    assert name == "newsletter"
    suggested = runner.invoke(cli, arguments)
    assert suggested.exit_code == 0, suggested.output


def test_init_starts_a_git_repository_when_git_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        skip_or_fail("git is not installed (apt-get install git)")
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli, ["init", "letters"])

    assert result.exit_code == 0, result.output
    assert "started a git repository in letters (git init)" in result.output
    assert (tmp_path / "letters" / ".git").is_dir()
    ignored = subprocess.run(
        ["git", "check-ignore", "newsletter.db", "build/x", "outbox/x"],
        cwd=tmp_path / "letters", capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert ignored == ["newsletter.db", "build/x", "outbox/x"]


def test_init_inside_a_repository_leaves_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        skip_or_fail("git is not installed (apt-get install git)")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli, ["init", "letters"])

    assert result.exit_code == 0, result.output
    assert "git repository" not in result.output
    assert not (tmp_path / "letters" / ".git").exists()
