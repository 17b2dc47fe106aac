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
- An mbox file (``mbox:PATH``, where a local MTA delivers) is only read, under the
  mbox lock one chunk at a time: nothing is flagged or removed, and every message is
  recognised on the next run by that record, as on POP3.

A message set aside (``quarantine``: too large, too deep, too slow to read) is flagged
for a person (Maildir ``F``, IMAP ``\\Flagged``) and left unseen, or moved to
``mailbox.quarantine_folder`` (an IMAP folder; a Maildir++ subfolder ``.NAME``); POP3
has neither, so it stays where it is. Of a message larger than
``mailbox.max_message_size`` only its first :data:`HEAD_BYTES` are fetched.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import poplib
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol
from urllib.parse import unquote, urlsplit

from newsletter.config import Config, env_secret
from newsletter.errors import ConfigError, MailboxError

DONE_KEYWORD = b"$NewsletterDone"
CHUNK = 500
HEAD_BYTES = 65536  # what is fetched of a message past mailbox.max_message_size


class Fetched(NamedTuple):
    handle: str  # what finish() is told
    raw: bytes  # the message, or its first HEAD_BYTES when it is larger than the limit
    size: int  # the whole message's, as the source counts it
    label: str  # the message, for a person: a file name, an IMAP UID


class Source(Protocol):
    description: str
    quarantine_folder: str | None  # where set-aside messages go (None: left in place)

    def chunks(self) -> Iterator[list[Fetched]]: ...

    def finish(
        self, handled: Sequence[str], acted_on: Sequence[str], quarantined: Sequence[str] = ()
    ) -> None: ...

    def close(self) -> None: ...


def open_source(config: Config) -> Source:
    """The source ``mailbox.url`` names, connected and logged in."""
    settings = config.mailbox
    if not settings.url:
        raise ConfigError(
            "mailbox.url is not set in newsletter.yaml; set it to where bounces arrive "
            "(imaps://user@host/INBOX, pop3s://user@host, maildir:PATH or mbox:PATH)"
        )
    url = settings.url
    folder = settings.quarantine_folder
    if url.startswith("mbox:"):
        return MboxSource(
            config.root / url.removeprefix("mbox:").removeprefix("//"),
            max_bytes=settings.max_message_size,
        )
    if url.startswith("maildir:"):
        if folder is not None and (folder.startswith(".") or "/" in folder or "\\" in folder):
            raise ConfigError(
                f"mailbox.quarantine_folder: {folder!r} cannot be a Maildir folder; give a "
                "plain name such as Quarantine (it becomes the Maildir++ folder .Quarantine)"
            )
        return MaildirSource(
            config.root / url.removeprefix("maildir:").removeprefix("//"),
            max_bytes=settings.max_message_size,
            quarantine_folder=folder,
        )
    parts = urlsplit(url)
    if parts.scheme not in ("imaps", "imap", "pop3s") or not parts.hostname:
        raise ConfigError(
            f"mailbox.url: {url!r} is not a mailbox URL; use imaps://user@host/INBOX, "
            "imap://user@host/INBOX (STARTTLS), pop3s://user@host, maildir:PATH or mbox:PATH"
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
                parts.hostname,
                parts.port or 995,
                user,
                password,
                context,
                timeout=settings.timeout,
                max_bytes=settings.max_message_size,
            )
        return ImapSource(
            parts.hostname,
            parts.port or _DEFAULT_PORTS[parts.scheme],
            user,
            password,
            context,
            folder=unquote(parts.path.lstrip("/")) or "INBOX",
            starttls=parts.scheme == "imap",
            timeout=settings.timeout,
            max_bytes=settings.max_message_size,
            quarantine_folder=folder,
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
    def __init__(
        self, path: Path, *, max_bytes: int = 10**7, quarantine_folder: str | None = None
    ) -> None:
        self.path = path
        self.description = f"maildir:{path}"
        self.max_bytes = max_bytes
        self.quarantine_folder = quarantine_folder
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise ConfigError(
                f"mailbox.url: {path} is not a Maildir (it needs new/ and cur/ folders)"
            )

    def chunks(self) -> Iterator[list[Fetched]]:
        names = sorted(entry.name for entry in os.scandir(self.path / "new") if entry.is_file())
        for start in range(0, len(names), CHUNK):
            chunk = []
            for name in names[start : start + CHUNK]:
                try:
                    with (self.path / "new" / name).open("rb") as file:
                        size = os.fstat(file.fileno()).st_size
                        raw = file.read() if size <= self.max_bytes else file.read(HEAD_BYTES)
                except FileNotFoundError:  # another reader took it meanwhile
                    continue
                chunk.append(Fetched(name, raw, size, name))
            yield chunk

    def finish(
        self, handled: Sequence[str], acted_on: Sequence[str], quarantined: Sequence[str] = ()
    ) -> None:
        seen, set_aside = set(acted_on), set(quarantined)
        aside = self.path / "cur"
        if set_aside and self.quarantine_folder:
            aside = self.path / f".{self.quarantine_folder}"
            for part in ("new", "cur", "tmp"):
                (aside / part).mkdir(parents=True, exist_ok=True)
            aside = aside / "cur"
        for name in handled:
            unique = name.split(":", 1)[0]
            if name in set_aside:
                target = aside / f"{unique}:2,F"
            else:
                target = self.path / "cur" / f"{unique}:2,{'S' if name in seen else ''}"
            try:
                os.replace(self.path / "new" / name, target)
            except FileNotFoundError:
                continue

    def close(self) -> None:
        pass


class MboxSource:
    def __init__(self, path: Path, *, max_bytes: int) -> None:
        if not path.is_file():
            raise ConfigError(f"mailbox.url: {path} is not an mbox file; give the file's path")
        self.path = path
        self.description = f"mbox:{path}"
        self.max_bytes = max_bytes
        self.quarantine_folder: str | None = None  # read only: nothing is moved

    def chunks(self) -> Iterator[list[Fetched]]:
        box = mailbox.mbox(self.path, create=False)
        try:
            with _locked(box):
                keys = list(box.iterkeys())  # one pass over the "From " lines
            for start in range(0, len(keys), CHUNK):
                chunk = []
                with _locked(box):  # the MTA appends while it is unlocked
                    for number, key in enumerate(keys[start : start + CHUNK], start + 1):
                        raw = box.get_bytes(key, from_=False)
                        head = raw if len(raw) <= self.max_bytes else raw[:HEAD_BYTES]
                        chunk.append(Fetched(str(key), head, len(raw), f"message {number}"))
                yield chunk
        finally:
            box.close()

    def finish(
        self, handled: Sequence[str], acted_on: Sequence[str], quarantined: Sequence[str] = ()
    ) -> None:
        pass  # the database remembers what was read

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _locked(box: mailbox.mbox) -> Iterator[None]:
    box.lock()
    try:
        yield
    finally:
        box.unlock()


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
        max_bytes: int,
        quarantine_folder: str | None,
    ) -> None:
        from imapclient import IMAPClient
        from imapclient.exceptions import IMAPClientError, LoginError

        scheme = "imap" if starttls else "imaps"
        self.description = f"{scheme}://{user}@{host}:{port}/{folder}"
        self.max_bytes = max_bytes
        self.quarantine_folder = quarantine_folder
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

    def chunks(self) -> Iterator[list[Fetched]]:
        uids = sorted(self.client.search(["UNKEYWORD", DONE_KEYWORD.decode()]))
        for start in range(0, len(uids), CHUNK):
            sizes = {
                uid: int(data[b"RFC822.SIZE"])
                for uid, data in self.client.fetch(
                    uids[start : start + CHUNK], ["RFC822.SIZE"]
                ).items()
            }
            small = [uid for uid, size in sizes.items() if size <= self.max_bytes]
            large = [uid for uid, size in sizes.items() if size > self.max_bytes]
            raws = {uid: data[b"BODY[]"] for uid, data in self._fetch(small, "BODY.PEEK[]").items()}
            head = f"BODY.PEEK[]<0.{HEAD_BYTES}>"
            raws |= {uid: data[b"BODY[]<0>"] for uid, data in self._fetch(large, head).items()}
            yield [Fetched(str(uid), raws[uid], sizes[uid], f"UID {uid}") for uid in sorted(raws)]

    def _fetch(self, uids: list[int], item: str) -> dict[int, dict[bytes, bytes]]:
        return self.client.fetch(uids, [item]) if uids else {}

    def finish(
        self, handled: Sequence[str], acted_on: Sequence[str], quarantined: Sequence[str] = ()
    ) -> None:
        if handled:
            self.client.add_flags([int(uid) for uid in handled], [DONE_KEYWORD])
        if acted_on:
            self.client.add_flags([int(uid) for uid in acted_on], [b"\\Seen"])
        if quarantined:
            uids = [int(uid) for uid in quarantined]
            self.client.add_flags(uids, [b"\\Flagged"])
            if self.quarantine_folder:
                if not self.client.folder_exists(self.quarantine_folder):
                    self.client.create_folder(self.quarantine_folder)
                if self.client.has_capability("MOVE"):
                    self.client.move(uids, self.quarantine_folder)
                else:  # a copy; the original stays, flagged done
                    self.client.copy(uids, self.quarantine_folder)

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
        max_bytes: int,
    ) -> None:
        self.description = f"pop3s://{user}@{host}:{port}"
        self.max_bytes = max_bytes
        self.quarantine_folder: str | None = None  # POP3 has one folder
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

    def chunks(self) -> Iterator[list[Fetched]]:
        _, listing, _ = self.client.list()
        sizes = [
            (int(number), int(size)) for number, size in (line.split()[:2] for line in listing)
        ]
        for start in range(0, len(sizes), CHUNK):
            chunk = []
            for number, size in sizes[start : start + CHUNK]:
                if size <= self.max_bytes:
                    _, lines, _ = self.client.retr(number)
                    raw = b"\r\n".join(lines) + b"\r\n"
                else:  # the header only
                    _, lines, _ = self.client.top(number, 0)
                    raw = (b"\r\n".join(lines) + b"\r\n")[:HEAD_BYTES]
                chunk.append(Fetched(str(number), raw, size, f"message {number}"))
            yield chunk

    def finish(
        self, handled: Sequence[str], acted_on: Sequence[str], quarantined: Sequence[str] = ()
    ) -> None:
        for number in acted_on:
            self.client.dele(int(number))

    def close(self) -> None:
        try:
            self.client.quit()  # commits the deletions
        except (poplib.error_proto, OSError):
            self.client.close()
