"""Reading a mailbox: a Maildir folder, IMAP (TLS or STARTTLS) or POP3 over TLS.

Every source gives the messages not yet handled, in chunks of ``(handle, bytes)``,
and is then told which ones were handled and which of those were acted on, so a
second run does not read them again:

- Maildir reads ``new/`` and moves each handled message to ``cur/``, flagged seen
  (``S``) when it was acted on and left unseen for a person otherwise, as a mail
  program does.
- IMAP reads the messages without the ``$NewsletterDone`` keyword (fetched with
  ``BODY.PEEK``, so nothing is marked read by looking), then sets the keyword on each,
  and ``\\Seen`` on the ones acted on.
- POP3 has no flags: messages acted on are deleted, the rest stay on the server and
  are recognised on the next run by the database's record of processed messages.
"""

from __future__ import annotations

import contextlib
import os
import poplib
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from newsletter.config import Config, env_secret
from newsletter.errors import ConfigError, MailboxError

DONE_KEYWORD = b"$NewsletterDone"
CHUNK = 500


class Source(Protocol):
    description: str

    def chunks(self) -> Iterator[list[tuple[str, bytes]]]: ...

    def finish(self, handled: Sequence[str], acted_on: Sequence[str]) -> None: ...

    def close(self) -> None: ...


def open_source(config: Config) -> Source:
    """The source ``mailbox.url`` names, connected and logged in."""
    settings = config.mailbox
    if not settings.url:
        raise ConfigError(
            "mailbox.url is not set in newsletter.yaml; set it to where bounces arrive "
            "(imaps://user@host/INBOX, pop3s://user@host or maildir:PATH)"
        )
    url = settings.url
    if url.startswith("maildir:"):
        return MaildirSource(config.root / url.removeprefix("maildir:").removeprefix("//"))
    parts = urlsplit(url)
    if parts.scheme not in ("imaps", "imap", "pop3s") or not parts.hostname:
        raise ConfigError(
            f"mailbox.url: {url!r} is not a mailbox URL; use imaps://user@host/INBOX, "
            "imap://user@host/INBOX (STARTTLS), pop3s://user@host or maildir:PATH"
        )
    if not parts.username:
        raise ConfigError(f"mailbox.url: {url!r} has no user name; write it as scheme://user@host")
    password = env_secret(settings.password_env)
    if password is None:
        raise ConfigError(
            f"{settings.password_env} is not set; export it with the password of the "
            f"mailbox in mailbox.url (mailbox.password_env names the variable)"
        )
    ca_file = str(config.root / settings.ca_file) if settings.ca_file else None
    context = ssl.create_default_context(cafile=ca_file)
    user = unquote(parts.username)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or _DEFAULT_PORTS[parts.scheme]}"
    try:
        if parts.scheme == "pop3s":
            return Pop3Source(
                parts.hostname, parts.port or 995, user, password, context, timeout=settings.timeout
            )
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return ImapSource(
            parts.hostname,
            parts.port or _DEFAULT_PORTS[parts.scheme],
            user,
            password,
            context,
            folder=folder,
            starttls=parts.scheme == "imap",
            timeout=settings.timeout,
        )
    except ssl.SSLCertVerificationError as error:
        raise MailboxError(
            f"{where}: the server's certificate cannot be verified "
            f"({error.verify_message or error.reason}); fix the certificate or set "
            "mailbox.ca_file to the CA that signed it"
        ) from None
    except (OSError, ssl.SSLError) as error:
        raise MailboxError(
            f"{where}: cannot connect ({error}); check mailbox.url and that the server is up"
        ) from None


_DEFAULT_PORTS = {"imaps": 993, "imap": 143, "pop3s": 995}


class MaildirSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"maildir:{path}"
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise ConfigError(
                f"mailbox.url: {path} is not a Maildir (it needs new/ and cur/ folders)"
            )

    def chunks(self) -> Iterator[list[tuple[str, bytes]]]:
        names = sorted(entry.name for entry in os.scandir(self.path / "new") if entry.is_file())
        for start in range(0, len(names), CHUNK):
            chunk = []
            for name in names[start : start + CHUNK]:
                try:
                    chunk.append((name, (self.path / "new" / name).read_bytes()))
                except FileNotFoundError:  # another reader took it meanwhile
                    continue
            yield chunk

    def finish(self, handled: Sequence[str], acted_on: Sequence[str]) -> None:
        seen = set(acted_on)
        for name in handled:
            unique = name.split(":", 1)[0]
            flags = "S" if name in seen else ""
            try:
                os.replace(self.path / "new" / name, self.path / "cur" / f"{unique}:2,{flags}")
            except FileNotFoundError:
                continue

    def close(self) -> None:
        pass


class ImapSource:
    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        context: ssl.SSLContext,
        *,
        folder: str,
        starttls: bool,
        timeout: float,
    ) -> None:
        from imapclient import IMAPClient
        from imapclient.exceptions import IMAPClientError, LoginError

        scheme = "imap" if starttls else "imaps"
        self.description = f"{scheme}://{user}@{host}:{port}/{folder}"
        self.client = IMAPClient(
            host, port=port, ssl=not starttls, ssl_context=context, timeout=timeout
        )
        try:
            if starttls:
                self.client.starttls(context)
            self.client.login(user, password)
            self.client.select_folder(folder)
        except LoginError:
            self.close()
            raise MailboxError(
                f"{self.description}: the server refused the login; check the user in "
                "mailbox.url and the password in mailbox.password_env"
            ) from None
        except IMAPClientError as error:
            self.close()
            raise MailboxError(f"{self.description}: {error}; check mailbox.url") from None

    def chunks(self) -> Iterator[list[tuple[str, bytes]]]:
        uids = sorted(self.client.search(["UNKEYWORD", DONE_KEYWORD.decode()]))
        for start in range(0, len(uids), CHUNK):
            fetched = self.client.fetch(uids[start : start + CHUNK], ["BODY.PEEK[]"])
            yield [(str(uid), data[b"BODY[]"]) for uid, data in sorted(fetched.items())]

    def finish(self, handled: Sequence[str], acted_on: Sequence[str]) -> None:
        if handled:
            self.client.add_flags([int(uid) for uid in handled], [DONE_KEYWORD])
        if acted_on:
            self.client.add_flags([int(uid) for uid in acted_on], [b"\\Seen"])

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # the connection is going away either way
            with contextlib.suppress(OSError):
                self.client.shutdown()


class Pop3Source:
    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        context: ssl.SSLContext,
        *,
        timeout: float,
    ) -> None:
        self.description = f"pop3s://{user}@{host}:{port}"
        self.client = poplib.POP3_SSL(host, port, context=context, timeout=timeout)
        try:
            self.client.user(user)
            self.client.pass_(password)
        except poplib.error_proto:
            self.close()
            raise MailboxError(
                f"{self.description}: the server refused the login; check the user in "
                "mailbox.url and the password in mailbox.password_env"
            ) from None

    def chunks(self) -> Iterator[list[tuple[str, bytes]]]:
        _, listing, _ = self.client.list()
        numbers = [int(line.split()[0]) for line in listing]
        for start in range(0, len(numbers), CHUNK):
            chunk = []
            for number in numbers[start : start + CHUNK]:
                _, lines, _ = self.client.retr(number)
                chunk.append((str(number), b"\r\n".join(lines) + b"\r\n"))
            yield chunk

    def finish(self, handled: Sequence[str], acted_on: Sequence[str]) -> None:
        for number in acted_on:
            self.client.dele(int(number))

    def close(self) -> None:
        try:
            self.client.quit()  # commits the deletions
        except (poplib.error_proto, OSError):
            self.client.close()
