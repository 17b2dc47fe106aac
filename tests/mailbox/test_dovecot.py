"""``newsletter mailbox process`` against a real Dovecot: imaps, imap with STARTTLS, pop3s."""

from __future__ import annotations

import imaplib
import json
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.models import Subscriber
from newsletter.send.return_tokens import ReturnTokens
from newsletter.store import Store, open_store
from tests.conftest import skip_or_fail
from tests.mailbox.conftest import Returned
from tests.mailbox.dovecot import PASSWORD, USER, Dovecot, missing_reason, start_dovecot
from tests.mailbox.hostile import nested_messages

pytestmark = pytest.mark.slow  # a Dovecot server started for each test


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    reason = missing_reason()
    if reason:
        skip_or_fail(reason)
    # Not under pytest's tmp_path: its folders are private to root, and Dovecot reads
    # the mail as another user.
    folder = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
    folder.chmod(0o755)
    server = start_dovecot(folder / "dovecot")
    monkeypatch.setenv("MAILBOX_PASSWORD", PASSWORD)
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def use_mailbox(project: Path, url: str, ca_file: Path | None, **settings: object) -> Store:
    path = project / "newsletter.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["mailbox"] = {"url": url, **({"ca_file": str(ca_file)} if ca_file else {}), **settings}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return open_store(load_config(path))


def flags(server: Dovecot, folder: str = "INBOX") -> dict[bytes, set[bytes]]:
    """Subject -> IMAP flags of every message in the folder, read with another client."""
    context = ssl.create_default_context(cafile=str(server.cert))
    with imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port, ssl_context=context) as client:
        client.login(USER, PASSWORD)
        client.select(folder, readonly=True)
        _, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found = {}
    for item in data:
        if isinstance(item, tuple):
            head, body = item
            flag_text = head.split(b"FLAGS (")[1].split(b")")[0]
            found[body.strip().removeprefix(b"Subject: ")] = set(flag_text.split()) - {b"\\Recent"}
    return found


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_imap_messages_are_processed_once_and_flagged(
    dovecot: Dovecot, project: Path, runner: CliRunner, returned: Returned, scheme: str
) -> None:
    port = dovecot.imaps_port if scheme == "imaps" else dovecot.imap_port
    store = use_mailbox(project, f"{scheme}://{USER}@127.0.0.1:{port}/INBOX", dovecot.cert)
    subscriber = store.add("reader0@example.net", topics=["research"])
    reader = subscriber.id
    dovecot.deliver("a", returned("gmail-no-such-user", subscriber, None))
    dovecot.deliver("b", returned("question", subscriber, None))

    result = runner.invoke(cli, ["mailbox", "process", "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["source"] == f"{scheme}://{USER}@127.0.0.1:{port}/INBOX"
    assert (summary["messages"]["hard_bounce"], summary["messages"]["other"]) == (1, 1)
    assert store.get(reader).status == "bounced"
    assert flags(dovecot) == {
        b"Delivery Status Notification (Failure)": {b"$NewsletterDone", b"\\Seen"},
        # Left for a person to read: still unread.
        b"Re: Stem Cells: The Medicine in Breast Milk?": {b"$NewsletterDone"},
    }
    again = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)
    assert sum(again["messages"].values()) + again["already_processed"] == 0
    store.close()


def test_pop3_deletes_what_it_acted_on_and_keeps_the_rest(
    dovecot: Dovecot, project: Path, runner: CliRunner, returned: Returned
) -> None:
    store = use_mailbox(project, f"pop3s://{USER}@127.0.0.1:{dovecot.pop3s_port}", dovecot.cert)
    subscriber = store.add("reader0@example.net", topics=["research"])
    reader = subscriber.id
    dovecot.deliver("a", returned("microsoft-jmrp-complaint", subscriber, None))
    dovecot.deliver("b", returned("out-of-office", subscriber, None))

    first = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)
    second = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)

    assert (first["messages"]["complaint"], first["messages"]["auto_reply"]) == (1, 1)
    assert store.get(reader).status == "complained"
    assert list(flags(dovecot)) == [b"Automatic reply: Stem Cells: The Medicine in Breast Milk?"]
    # POP3 cannot flag the auto-reply: the database knows it was seen.
    assert (sum(second["messages"].values()), second["already_processed"]) == (0, 1)
    store.close()


def deliver_hostile(dovecot: Dovecot, returned: Returned, subscriber: Subscriber) -> None:
    """A message nested 3,000 deep, one of 300 KB (over a limit of 100 KB) and a valid
    mailto unsubscribe (issue 20)."""
    dovecot.deliver("a", nested_messages(3000))
    huge = b"Subject: huge\r\nMessage-ID: <huge@example.com>\r\n\r\n" + b"x" * 300_000
    dovecot.deliver("b", huge)
    dovecot.deliver("c", returned("mailto-unsubscribe", subscriber, None))


@pytest.mark.parametrize("folder", ["Quarantine", None])
def test_imap_sets_aside_what_it_cannot_read_into_the_quarantine_folder(
    dovecot: Dovecot,
    project: Path,
    runner: CliRunner,
    returned: Returned,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    folder: str | None,
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    url = f"imaps://{USER}@127.0.0.1:{dovecot.imaps_port}/INBOX"
    settings = {"quarantine_folder": folder, "max_message_size": 100_000}
    store = use_mailbox(project, url, dovecot.cert, **settings)
    subscriber = store.add("reader0@example.net", topics=["research"])
    deliver_hostile(dovecot, returned, subscriber)

    result = runner.invoke(cli, ["mailbox", "process", "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["messages"]["quarantine"], summary["messages"]["unsubscribe"]) == (2, 1)
    assert [item["reason"] for item in summary["quarantined"]] == [
        "more than 64 nested multipart or message parts",
        "larger than mailbox.max_message_size (100,000 bytes)",
    ]
    assert store.get(subscriber.id).status == "unsubscribed"  # type: ignore[union-attr]
    unsubscribe = b"unsubscribe " + subject_token(returned, subscriber)
    set_aside = {
        b"deep-messages": {b"$NewsletterDone", b"\\Flagged"},
        b"huge": {b"$NewsletterDone", b"\\Flagged"},
    }
    if folder:
        assert list(flags(dovecot)) == [unsubscribe]
        assert flags(dovecot, folder) == set_aside
    else:  # left in the inbox, flagged for a person and unread
        assert flags(dovecot) == {unsubscribe: {b"$NewsletterDone", b"\\Seen"}, **set_aside}
    again = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)
    assert sum(again["messages"].values()) + again["already_processed"] == 0
    store.close()


def test_pop3_leaves_what_it_set_aside_and_does_not_read_it_again(
    dovecot: Dovecot,
    project: Path,
    runner: CliRunner,
    returned: Returned,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    url = f"pop3s://{USER}@127.0.0.1:{dovecot.pop3s_port}"
    store = use_mailbox(project, url, dovecot.cert, max_message_size=100_000)
    subscriber = store.add("reader0@example.net", topics=["research"])
    deliver_hostile(dovecot, returned, subscriber)

    first = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)
    second = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)

    assert (first["messages"]["quarantine"], first["messages"]["unsubscribe"]) == (2, 1)
    assert store.get(subscriber.id).status == "unsubscribed"  # type: ignore[union-attr]
    assert sorted(flags(dovecot)) == [b"deep-messages", b"huge"]
    assert (second["messages"]["quarantine"], second["already_processed"]) == (0, 2)
    store.close()


def subject_token(returned: Returned, subscriber: Subscriber) -> bytes:
    message = returned("mailto-unsubscribe", subscriber, None)
    return message.split(b"Subject: unsubscribe ")[1].split(b"\r\n")[0]


def test_a_certificate_that_cannot_be_verified_stops_with_one_line(
    dovecot: Dovecot, project: Path, runner: CliRunner, tokens: ReturnTokens
) -> None:
    use_mailbox(project, f"imaps://{USER}@127.0.0.1:{dovecot.imaps_port}/INBOX", None).close()

    result = runner.invoke(cli, ["mailbox", "process"])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: imaps://127.0.0.1:{dovecot.imaps_port}: the server's certificate cannot be "
        "verified (self-signed certificate); fix the certificate or set mailbox.ca_file to "
        "the CA that signed it\n"
    )


def test_a_wrong_password_is_named_with_the_key_that_holds_it(
    dovecot: Dovecot,
    project: Path,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tokens: ReturnTokens,
) -> None:
    url = f"imaps://{USER}@127.0.0.1:{dovecot.imaps_port}/INBOX"
    use_mailbox(project, url, dovecot.cert).close()
    monkeypatch.setenv("MAILBOX_PASSWORD", "wrong")

    result = runner.invoke(cli, ["mailbox", "process"])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {url}: the server refused the login; check the user in mailbox.url and "
        "the password in mailbox.password_env\n"
    )
