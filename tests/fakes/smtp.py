"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it receives and
answers with scripted 4xx/5xx replies.

    with FakeSmtp() as server:
        server.refuse("ghost@example.org", "550 5.1.1 No such user")
        server.defer("busy@example.org", times=2)      # 451 twice, then accepted
        ... send to server.host, server.port ...
        server.arrivals   # [Arrival(sender, recipients, data)]
"""

from __future__ import annotations

import email
import email.policy
import ssl
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes import LocalServer


@dataclass(frozen=True)
class Arrival:
    sender: str
    recipients: tuple[str, ...]
    data: bytes

    def message(self) -> EmailMessage:
        """The message as the stdlib parser reads it."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Script:
    refused: dict[str, str] = field(default_factory=dict)  # address -> permanent reply
    deferred: dict[str, list[str]] = field(default_factory=dict)  # address -> replies left
    data_replies: list[str] = field(default_factory=list)  # next DATA answers
    every_rcpt: str | None = None  # a reply to every RCPT (a relay-wide refusal)


class _Handler:
    def __init__(self, server: FakeSmtp) -> None:
        self.server = server

    async def handle_EHLO(
        self, smtp: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.server.lock:
            self.server.connection_peers.add(session.peer)
            self.server.ehlo_names.append(hostname)
        return responses

    async def handle_RCPT(
        self, smtp: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        script = self.server.script
        with self.server.lock:
            self.server.rcpt_attempts[address] += 1
            if script.every_rcpt is not None:
                return script.every_rcpt
            if address in script.refused:
                return script.refused[address]
            waiting = script.deferred.get(address)
            if waiting:
                return waiting.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        with self.server.lock:
            if self.server.script.data_replies:
                return self.server.script.data_replies.pop(0)
            self.server.accepted += 1
            if self.server.keep:
                self.server.arrivals.append(
                    Arrival(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content))
                )
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's controller, on a port the system picks (port 0)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class FakeSmtp(LocalServer):
    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        keep: bool = True,
    ) -> None:
        self.keep = keep  # False: only count (the benchmark's sink)
        self.accepted = 0
        self.lock = threading.Lock()
        self.script = _Script()
        self.arrivals: list[Arrival] = []
        self.rcpt_attempts: Counter[str] = Counter()
        self.connection_peers: set[Any] = set()
        self.ehlo_names: list[str] = []  # the name given in each EHLO
        self.host = "127.0.0.1"
        options: dict[str, Any] = {}
        if tls_context is not None and implicit_tls:
            options.update(ssl_context=tls_context)  # TLS from the first byte (port 465)
        elif tls_context is not None:
            options.update(tls_context=tls_context, require_starttls=True)
        if credentials is not None:
            options.update(
                authenticator=_Authenticator(*credentials),
                auth_require_tls=tls_context is not None,
            )
        self._controller = _Controller(_Handler(self), hostname=self.host, port=0, **options)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def connections(self) -> int:
        """How many connections said EHLO (STARTTLS ones say it twice, counted once)."""
        return len(self.connection_peers)

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user here") -> None:
        self.script.refused[address] = reply

    def defer(self, address: str, *, times: int, reply: str = "451 4.3.0 Try again later") -> None:
        self.script.deferred[address] = [reply] * times

    def refuse_every_recipient(self, reply: str | None) -> None:
        """Answer every RCPT with ``reply`` (None: stop), as a misconfigured relay does."""
        self.script.every_rcpt = reply

    def answer_data(self, *replies: str) -> None:
        """The next DATA commands get these replies instead of being accepted."""
        self.script.data_replies.extend(replies)

    def received_by(self) -> Counter[str]:
        """How many messages each address received."""
        return Counter(address for arrival in self.arrivals for address in arrival.recipients)

    def start(self) -> FakeSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


def main() -> None:
    """A counting sink in its own process (for the benchmark): prints its port, then
    serves until stdin closes."""
    with FakeSmtp(keep=False) as server:
        print(server.port, flush=True)
        sys.stdin.read()


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.expected = (username.encode(), password.encode())

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == self.expected
        return AuthResult(success=ok, handled=False)


if __name__ == "__main__":
    main()
