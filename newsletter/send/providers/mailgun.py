"""``mailgun``: Mailgun's messages API, ``POST /v3/<domain>/messages``, in batches.

One request (``multipart/form-data``, as Mailgun's API reference gives it: the batch's
HTML and variables go as they are, where form-urlencoding them cost more CPU than the
rest of the send) carries up to ``mailgun.batch_size`` (at most 1,000) recipients as
repeated ``to`` fields, the HTML and text once with each personalisation marker replaced by a
recipient variable (``%recipient.t_name%``; ``%recipient.h_name%`` where a value of the
batch changes when HTML-escaped), and ``recipient-variables``: per address, the values,
the values of its own headers (``h:List-Unsubscribe: %recipient.hdr_0%``) and its tags.
With recipient variables Mailgun sends one message per recipient; the tags become
``v:campaign_id`` / ``v:subscriber_id``, which its webhooks echo as ``user-variables``.

Answers: 200 (the message id, one per request, kept for every recipient); 401 names
the key variable and the region; a domain that is not found (404), not verified or a
sandbox domain sending to an address it does not authorise (403, 400) stop the campaign
with Mailgun's message and what to fix. 429 and 5xx are retried; a request whose answer
was lost is ``unknown``, never resent on its own
(:mod:`newsletter.send.providers.http_api`). Mailgun refuses single recipients after
accepting the request (its suppression lists, a bounce): those arrive as ``failed``
events through ``POST /webhooks/mailgun`` and fail that recipient only.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from html import escape

import orjson

from newsletter.config import Config, env_secret
from newsletter.errors import ConfigError, ProviderError
from newsletter.render.compile import marker
from newsletter.render.header_lines import format_address, header_value
from newsletter.send.providers import NO_LOG, BaseProvider, Batch, Delivery, DeliveryLog
from newsletter.send.providers.http_api import Answer, AnswerLost, ApiClient, spread
from newsletter.send.providers.retry import Backoff

FORM = "multipart/form-data; boundary="


class MailgunProvider(BaseProvider):
    name = "mailgun"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.settings = config.mailgun
        self.batch_size = self.settings.batch_size
        if not self.settings.domain:
            raise ConfigError(
                "mailgun.domain is not set: give the sending domain you set up in Mailgun "
                "(for example mg.example.org)"
            )
        self.domain = self.settings.domain
        key = env_secret(self.settings.api_key_env)
        if not key:
            raise ConfigError(
                f"{self.settings.api_key_env} is not set: export it with your Mailgun API "
                "key (mailgun.api_key_env names the variable)"
            )
        credentials = base64.b64encode(f"api:{key}".encode()).decode()
        self.api = ApiClient(
            self.settings.base_url,
            provider="Mailgun",
            headers={"Authorization": f"Basic {credentials}"},
            timeout=self.settings.timeout,
            backoff=Backoff.from_settings(config.sending, notify=self.notice),
        )

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]:
        # One request for the whole batch, handed over through ``log`` right before each
        # attempt (the log waits first); its outcome returned as a whole.
        count = len(batch.recipients)
        everyone = self.form(batch)
        # Every value of a request for fewer recipients is in the whole batch's form
        # (a JSON string of its variables, an address, the content), so a boundary that
        # none of these holds is in none of those either.
        boundary = new_boundary(everyone)

        def body(going: Sequence[int]) -> bytes:
            if len(going) == count:
                return form_data(everyone, boundary)
            chosen = [batch.recipients[index] for index in going]
            return form_data(self.form(Batch(batch.content, chosen)), boundary)

        path = f"/v3/{self.domain}/messages"
        try:
            posted = self.api.post(path, body, FORM + boundary, count=count, log=log)
        except AnswerLost as lost:
            return spread(count, lost.going, Delivery("unknown", error=str(lost)))
        going, answer = posted.going, posted.answer
        if answer is None:
            return spread(count, going, [])
        if answer.status != 200:
            raise self._refusal(answer)
        found = answer.json()
        message_id = found.get("id") if isinstance(found, dict) else None
        message_id = str(message_id).strip("<>") if message_id else None
        return spread(count, going, Delivery("sent", message_id=message_id))

    def form(self, batch: Batch) -> list[tuple[str, str]]:
        """The request's form fields, in order (``to`` repeated)."""
        content = batch.content
        values = [content.values_for(recipient.personalization) for recipient in batch.recipients]
        # Where no value of the batch changes when HTML-escaped, the HTML takes the text
        # value: one variable per field, not two.
        escaped = {
            name
            for name in content.html_fields
            if any(escape(v[name], quote=True) != v[name] for v in values)
        }
        html, text = content.html, content.text
        for name in content.html_fields:
            prefix = "h" if name in escaped else "t"
            html = html.replace(marker("html", name), f"%recipient.{prefix}_{name}%")
        for name in content.text_fields:
            text = text.replace(marker("text", name), f"%recipient.t_{name}%")
        plain = content.text_fields | (content.html_fields - escaped)
        header_names = list(dict.fromkeys(n for r in batch.recipients for n in r.headers))
        tag_names = list(dict.fromkeys(n for r in batch.recipients for n in r.tags))
        variables: dict[str, dict[str, str]] = {}
        for recipient, value in zip(batch.recipients, values, strict=True):
            own = {f"t_{name}": value[name] for name in plain}
            for name in escaped:
                own[f"h_{name}"] = escape(value[name], quote=True)
            for number, name in enumerate(header_names):
                header = recipient.headers.get(name)
                own[f"hdr_{number}"] = header_value(name, header) if header else ""
            for name in tag_names:
                own[f"tag_{name}"] = recipient.tags.get(name, "")
            variables[recipient.email] = own
        fields = [("from", content.sender)]
        fields += [("to", format_address(r.email, r.name)) for r in batch.recipients]
        fields += [("subject", content.subject), ("text", text)]
        fields += [("html", html)]
        if content.reply_to:
            fields.append(("h:Reply-To", content.reply_to))
        fields += [(f"h:{n}", header_value(n, v)) for n, v in content.headers.items()]
        fields += [(f"h:{n}", f"%recipient.hdr_{i}%") for i, n in enumerate(header_names)]
        fields += [(f"v:{name}", f"%recipient.tag_{name}%") for name in tag_names]
        fields.append(("recipient-variables", orjson.dumps(variables).decode()))
        tracking = "yes" if self.settings.tracking else "no"
        fields += [("o:tracking", tracking), ("o:tracking-clicks", tracking)]
        fields.append(("o:tracking-opens", tracking))
        return fields

    def _refusal(self, answer: Answer) -> ProviderError:
        found = answer.json()
        message = str(found.get("message")) if isinstance(found, dict) else answer.text()
        status = answer.status
        if status == 401:
            hint = (
                f"check {self.settings.api_key_env} (a private API key) and mailgun.region "
                "(an EU account's key is refused by the US endpoint, and the other way round)"
            )
        elif status == 404:
            hint = (
                f"check mailgun.domain ({self.domain}) and mailgun.region: Mailgun does not "
                "know this domain there"
            )
        elif status == 413:
            hint = "lower mailgun.batch_size in newsletter.yaml"
        elif "sandbox" in message.lower() or "authorized recipients" in message.lower():
            hint = (
                "a sandbox domain sends only to its authorised recipients: set mailgun.domain "
                "to your own verified domain"
            )
        elif status == 403:
            hint = f"verify the domain {self.domain} in Mailgun (its DNS records) or enable it"
        else:
            hint = "fix what it says, then send again"
        return ProviderError(f"Mailgun refused the batch ({status}: {message}); {hint}")


def new_boundary(fields: Sequence[tuple[str, str]]) -> str:
    """A multipart boundary that no value of ``fields`` holds. It is letters, digits
    and ``_`` only, so it can only occur inside one run of these in a value, and every
    such run of a smaller request's values is in the whole batch's too."""
    while True:
        boundary = "newsletter_" + secrets.token_hex(16)
        if not any(boundary in value for _, value in fields):
            return boundary


def form_data(fields: Sequence[tuple[str, str]], boundary: str) -> bytes:
    """``fields`` as ``multipart/form-data`` (RFC 7578), in order; names with ``"``, CR
    or LF escaped as the HTML standard does (ours never have them)."""
    delimiter = f"--{boundary}\r\n".encode()
    parts = []
    for name, value in fields:
        quoted = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        parts += [
            delimiter,
            f'Content-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode(),
            value.encode(),
            b"\r\n",
        ]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)
