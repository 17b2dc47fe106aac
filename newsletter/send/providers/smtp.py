"""``smtp``: any SMTP server, through the standard library's smtplib.

Connections are opened once and reused for message after message; ``smtp.connections``
of them work in parallel, all paced by the campaign's one rate limiter (the
:class:`~newsletter.send.providers.DeliveryLog` waits before each message is handed
over). Answers are sorted by what they mean for the campaign:

- 4xx (421, 450, 451, 452, 454, ...): try this message again later, with backoff (the
  recipient back in ``pending`` while it waits, and re-checked before the retry); a
  recipient still refused when the retries run out stays ``pending`` for the next run.
- 5xx about one recipient (RCPT or DATA; see :mod:`.smtp_replies`): that recipient
  ``failed``; 550/551/553 with an addressing status (5.1.x) or none mean the address
  does not exist, so it is also ``bounced``. The campaign goes on.
- 5xx about us: the server refusing our login, our EHLO name, our sender address, to
  relay for us, or the message itself; or a certificate that cannot be verified:
  every message would fail, so the campaign stops at once (``ProviderError``), keeping
  what was sent; everyone else stays ``pending`` for a run after the fix.
- the server unreachable when the retries run out: the campaign pauses
  (``ProviderUnavailable``); sending again resumes it.
"""

from __future__ import annotations

import queue
import smtplib
import ssl
import threading
from dataclasses import dataclass

from newsletter.config import Config, env_secret
from newsletter.deliverability.dkim_keys import load_signing_key
from newsletter.deliverability.dkim_signing import DkimSigner
from newsletter.errors import ConfigError, ProviderError, ProviderUnavailable
from newsletter.send.providers import Content, Delivery, Recipient, local_message
from newsletter.send.providers.per_message import PerMessageProvider
from newsletter.send.providers.smtp_connect import default_local_hostname, tls_context
from newsletter.send.providers.smtp_replies import (
    data_refusal_scope,
    is_no_such_user,
    is_policy_refusal,
    rcpt_refusal_scope,
    same_refusal,
    temporary_refusal_is_about_us,
)


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {text}".strip()


class SmtpProvider(PerMessageProvider["_Outgoing"]):
    name = "smtp"

    def __init__(self, config: Config, *, reuse_connections: bool = True) -> None:
        super().__init__(config, connections=config.smtp.connections)
        self.settings = config.smtp
        # False opens one connection per message: only the benchmark's baseline wants it.
        self.reuse_connections = reuse_connections
        self.password = env_secret(self.settings.password_env)
        if self.settings.username and not self.password:
            raise ConfigError(
                f"smtp.username is set but {self.settings.password_env} is not; "
                f"export {self.settings.password_env} with the SMTP password"
            )
        self.local_hostname = self.settings.local_hostname or default_local_hostname(
            config.sender.email
        )
        ca_file = config.root / self.settings.ca_file if self.settings.ca_file else None
        if ca_file is not None and not ca_file.is_file():
            raise ConfigError(f"smtp.ca_file: {ca_file} does not exist; give the CA's PEM file")
        self.tls = tls_context(ca_file)
        # smtp.dkim: the key is read and parsed once, here, so a bad key stops the send
        # before anything is handed over.
        key = load_signing_key(config)
        self.signer = DkimSigner(key) if key is not None else None
        self._idle: queue.SimpleQueue[smtplib.SMTP] = queue.SimpleQueue()
        self._open: list[smtplib.SMTP] = []
        self._open_lock = threading.Lock()
        self._accepted_anyone = False  # until then a 5.7.x refusal may be everyone's

    @property
    def server(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    # One message, on a worker thread (per_message.PerMessageProvider hands it over).

    def prepare(self, content: Content, recipient: Recipient) -> _Outgoing:
        message_id, message = local_message(content, recipient)
        # SMTP wants CRLF (servers refuse bare LF since "SMTP smuggling"); smtplib only
        # adds the dot-stuffing.
        data = message.replace(b"\n", b"\r\n")
        if self.signer is not None:
            data = self.signer.sign(data)  # once: a retry sends the same signed bytes
        sender = recipient.envelope_sender or content.sender_email
        return _Outgoing(sender, recipient, message_id, data)

    def close(self) -> None:
        super().close()
        with self._open_lock:
            connections, self._open = self._open, []
        for connection in connections:
            self._quit(connection)

    def try_once(self, message: _Outgoing) -> Delivery | str:
        """One SMTP transaction: the Delivery when the answer settles the message (or stops
        the batch), else the temporary answer to try again after."""
        try:
            self._send(message.sender, message.recipient.email, message.data)
        except _LostAfterData as error:
            # The message was on the wire: trying again risks a second copy, and not
            # trying risks none at all. Say so instead of guessing.
            return Delivery("unknown", error=str(error))
        except (smtplib.SMTPException, OSError) as error:
            return self._answer(error, message.sender, message.recipient)
        return Delivery("sent", message_id=message.message_id)

    def _answer(self, error: OSError, sender: str, recipient: Recipient) -> Delivery | str:
        """What a failed transaction means: this message refused (failed), every message
        refused or our set-up wrong (the batch stops), or a temporary answer (its text)."""
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            return self._recipient_refused(error)
        if isinstance(error, smtplib.SMTPDataError):
            reply = _reply(error.smtp_code, error.smtp_error)
            scope = data_refusal_scope(error.smtp_code, _text(error.smtp_error))
            if error.smtp_code >= 500 and scope == "relay":
                return self.halt(self._refused_for_everyone(reply, "message"))
            return Delivery("failed", error=reply) if error.smtp_code >= 500 else reply
        if isinstance(error, smtplib.SMTPHeloError):
            reply = _reply(error.smtp_code, error.smtp_error)
            if error.smtp_code >= 500:
                return self.halt(self._refused_for_everyone(reply, "EHLO"))
            return reply
        if isinstance(
            error,
            ssl.SSLCertVerificationError
            | smtplib.SMTPAuthenticationError
            | smtplib.SMTPNotSupportedError,
        ):
            return self.halt(self._set_up_wrong(error))
        if isinstance(error, smtplib.SMTPSenderRefused):
            reply = _reply(error.smtp_code, error.smtp_error)
            if error.smtp_code >= 500:
                return self.halt(
                    ProviderError(
                        f"the SMTP server {self.server} refused the sender address "
                        f"{sender}: {reply}; check "
                        f"{'bounces.address' if recipient.envelope_sender else 'from'} "
                        "in newsletter.yaml and what the server lets you send as"
                    )
                )
            return reply
        if isinstance(error, smtplib.SMTPResponseException):
            # The greeting, HELO or a 421 "closing channel": the server, not the message.
            return _reply(error.smtp_code, error.smtp_error)
        return f"{type(error).__name__}: {error}"

    def _recipient_refused(self, error: smtplib.SMTPRecipientsRefused) -> Delivery | str:
        refusals = list(error.recipients.values())
        code, text = refusals[0]
        reply = _reply(code, text)
        # The relay's answer for the sender's own address, when it was asked.
        everyone = len(refusals) > 1 and same_refusal(
            _text(text), refusals[1][0], _text(refusals[1][1])
        )
        if code >= 500 and (everyone or rcpt_refusal_scope(code, _text(text)) == "relay"):
            return self.halt(self._refused_for_everyone(reply, "recipient"))
        if code >= 500:
            return Delivery("failed", error=reply, bounced=is_no_such_user(code, _text(text)))
        return reply

    def _set_up_wrong(
        self,
        error: ssl.SSLCertVerificationError
        | smtplib.SMTPAuthenticationError
        | smtplib.SMTPNotSupportedError,
    ) -> ProviderError:
        """The campaign-stopping error of a certificate, login or security setting that
        does not work with this server."""
        if isinstance(error, ssl.SSLCertVerificationError):
            return ProviderError(
                f"the SMTP server {self.server}'s certificate cannot be verified "
                f"({error.verify_message or error.reason}); fix the server's "
                "certificate, or set smtp.ca_file to the CA that signed it"
            )
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return ProviderError(
                f"the SMTP server {self.server} refused the login of "
                f"{self.settings.username!r} "
                f"({_reply(error.smtp_code, error.smtp_error)}); check smtp.username "
                f"and {self.settings.password_env}"
            )
        return ProviderError(
            f"the SMTP server {self.server} cannot do smtp.security = "
            f"{self.settings.security!r} ({error}); set smtp.security to what "
            "the server offers"
        )

    def out_of_retries(self, last_error: str) -> Delivery:
        """After the last try: a temporary refusal of this message defers it; a server
        that stays unavailable stops the batch."""
        if (
            last_error[:1] == "4"
            and not last_error.startswith("421")
            and not temporary_refusal_is_about_us(last_error)
        ):
            return Delivery("deferred", error=last_error)
        return self.halt(
            ProviderUnavailable(
                f"the SMTP server {self.server} did not take messages after "
                f"{self.backoff.retries + 1} attempts (last: {last_error})",
                maybe_delivered=False,
            )
        )

    def _refused_for_everyone(self, reply: str, step: str) -> ProviderError:
        """The campaign-stopping error of a refusal that every message would get."""
        hint = {
            "EHLO": f"our EHLO name is {self.local_hostname!r}: set smtp.local_hostname "
            "to a fully qualified name the server accepts",
            "message": "the server refuses the message itself: fix the issue (size, "
            "content) or ask the server's admin",
        }.get(step)
        if hint is None:
            lowered = reply.lower()
            if "helo" in lowered or "ehlo" in lowered or "hostname" in lowered:
                hint = (
                    f"our EHLO name is {self.local_hostname!r}: set smtp.local_hostname to a "
                    "fully qualified name the server accepts"
                )
            elif not self.settings.username:
                hint = (
                    "the server may want a login: set smtp.username and "
                    f"{self.settings.password_env}, or let this host relay"
                )
            else:
                hint = "check what the server lets this client and sender do"
        # What this stops (a campaign, a test send, one confirmation) is the caller's to say.
        return ProviderError(
            f"the SMTP server {self.server} refused at {step}: {reply}; this is about the "
            f"server or this client, not the recipient ({hint})"
        )

    def _send(self, sender: str, to: str, data: bytes) -> None:
        """One SMTP transaction on a pooled connection.

        Written out (rather than ``sendmail``) to know which step failed: a connection
        lost during DATA may have delivered the message, one lost before it has not.
        """
        connection = self._take()
        try:
            connection.ehlo_or_helo_if_needed()
            options = ["SMTPUTF8"] if not to.isascii() else []
            code, reply = connection.mail(sender, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            code, reply = connection.rcpt(to)
            if code not in (250, 251):
                refused = {to: (code, reply)}
                if (
                    not self._accepted_anyone
                    and is_policy_refusal(code, _text(reply))
                    and rcpt_refusal_scope(code, _text(reply)) == "recipient"
                ):
                    refused[sender] = connection.rcpt(sender)  # would anyone be taken?
                raise smtplib.SMTPRecipientsRefused(refused)
            self._accepted_anyone = True
            try:
                code, reply = connection.data(data)
            except (smtplib.SMTPServerDisconnected, OSError) as error:
                self._discard(connection)
                raise _LostAfterData(
                    f"connection lost after the message was sent ({error}); "
                    "the server may have accepted it"
                ) from error
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except smtplib.SMTPRecipientsRefused:
            self._reset(connection)
            raise
        except smtplib.SMTPResponseException as error:
            if error.smtp_code == 421:  # the server is closing this connection
                self._discard(connection)
            else:
                self._reset(connection)
            raise
        except (smtplib.SMTPException, OSError):
            self._discard(connection)
            raise
        self._give_back(connection)

    def _reset(self, connection: smtplib.SMTP) -> None:
        try:
            connection.rset()
        except (smtplib.SMTPException, OSError):
            self._discard(connection)
        else:
            self._give_back(connection)

    # The connection pool.

    def _take(self) -> smtplib.SMTP:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._connect()

    def _give_back(self, connection: smtplib.SMTP) -> None:
        if self.reuse_connections:
            self._idle.put(connection)
        else:
            self._discard(connection)

    def _discard(self, connection: smtplib.SMTP) -> None:
        with self._open_lock:
            if connection in self._open:
                self._open.remove(connection)
        self._quit(connection)

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        local_name = self.local_hostname
        if settings.security == "ssl":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                local_hostname=local_name,
                timeout=settings.timeout,
                context=self.tls,
            )
        else:
            connection = smtplib.SMTP(
                settings.host, settings.port, local_hostname=local_name, timeout=settings.timeout
            )
        try:
            if settings.security == "starttls":
                connection.starttls(context=self.tls)
            if settings.username:
                connection.login(settings.username, self.password or "")
        except BaseException:
            self._quit(connection)
            raise
        with self._open_lock:
            self._open.append(connection)
        return connection

    @staticmethod
    def _quit(connection: smtplib.SMTP) -> None:
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()


@dataclass(frozen=True, slots=True)
class _Outgoing:
    sender: str  # MAIL FROM
    recipient: Recipient
    message_id: str
    data: bytes  # CRLF, signed once


def _text(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


class _LostAfterData(Exception):
    """The connection broke during DATA: the server may have the message."""
