"""``postmark``: Postmark's batch endpoints, ``/email/batchWithTemplates`` and ``/email/batch``.

One request carries up to ``postmark.batch_size`` (at most 500) messages. A campaign
goes through a template made of its content when the provider first sends it
(:mod:`~newsletter.send.providers.stored_templates`), each message then carrying
only its reader's values; with ``postmark.templates: false``, for confirmation mail
and for content Postmark would misread as a template, each message is the whole
personalised issue (``/email/batch`` has no substitutions). Messages go on the message stream
``postmark.message_stream`` (a Broadcast stream, ``broadcast`` by default; confirmation
mail goes on ``postmark.transactional_stream``). Each message carries the campaign and
subscriber ids as ``Metadata``, which Postmark echoes in its webhooks.

Answers: 200 with one result per message, in order: ``ErrorCode`` 0 is accepted (its
``MessageID`` recorded), 406 (an inactive recipient: bounced, complained or
unsubscribed at Postmark) and 300 about the recipient's address fail only that
recipient; a result about the account or the sender (a token, a sender signature not
confirmed, an account pending approval, a stream that does not exist) stops the
campaign with everyone not accepted still pending and one line saying what to fix.
401 and 422 refuse the whole request the same way. 429 and 5xx are retried, and a
request whose answer was lost is ``unknown``, never resent on its own
(:mod:`newsletter.send.providers.http_api`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from newsletter.config import Config, env_secret
from newsletter.errors import ConfigError, ProviderError
from newsletter.render.header_lines import format_address, header_value
from newsletter.send.providers import (
    NO_LOG,
    BaseProvider,
    Batch,
    Content,
    Delivery,
    DeliveryLog,
)
from newsletter.send.providers.http_api import (
    Answer,
    AnswerLost,
    ApiClient,
    NotSent,
    post,
    spread,
)
from newsletter.send.providers.retry import Backoff
from newsletter.send.providers.stored_templates import (
    Template,
    new_alias,
    templatable,
    template_body,
    template_for,
)

TOKEN_HEADER = "X-Postmark-Server-Token"
INACTIVE_RECIPIENT = 406
INVALID_REQUEST = 300
BAD_TOKEN = 10
TOO_MANY_MESSAGES = 410
# Per-message and request error codes that are about the account or the sender, not one
# recipient: what to do about each.
ACCOUNT_ERRORS = {
    BAD_TOKEN: "check {token_env}: it must be the Server API token of your Postmark server",
    400: "add the From address (or its domain) as a Sender Signature in Postmark and confirm it",
    401: "confirm the From address's Sender Signature (or verify its domain) in Postmark",
    405: "your Postmark account may not send now (out of credits, or sending paused): see "
    "Postmark's account page",
    412: "your Postmark account is pending approval: until it is approved it sends only to "
    "addresses on the From address's domain",
    TOO_MANY_MESSAGES: "lower postmark.batch_size in newsletter.yaml (at most 500)",
}


class PostmarkProvider(BaseProvider):
    name = "postmark"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.settings = config.postmark
        self.batch_size = self.settings.batch_size
        token = env_secret(self.settings.server_token_env)
        if not token:
            raise ConfigError(
                f"{self.settings.server_token_env} is not set: export it with your Postmark "
                "server's API token (postmark.server_token_env names the variable)"
            )
        self.api = ApiClient(
            self.settings.api_url,
            provider="Postmark",
            headers={TOKEN_HEADER: token, "Accept": "application/json"},
            timeout=self.settings.timeout,
            backoff=Backoff.from_settings(config.sending, notify=self.notice),
        )
        # Content -> its template (None: it goes as full messages), made on first use.
        self.templates: dict[int, tuple[Content, Template | None]] = {}

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]:
        # One request for the whole batch, handed over through ``log`` right before each
        # attempt (the log waits first); its outcome returned as a whole.
        count = len(batch.recipients)
        template = self.template(batch.content)

        def body(going: Sequence[int]) -> bytes:
            chosen = Batch(batch.content, [batch.recipients[index] for index in going])
            if template is None:
                return orjson.dumps(self.messages(chosen))
            return orjson.dumps({"Messages": self.messages(chosen, template)})

        path = "/email/batch" if template is None else "/email/batchWithTemplates"
        try:
            posted = self.api.post(path, body, "application/json", count=count, log=log)
        except AnswerLost as lost:
            return spread(count, lost.going, Delivery("unknown", error=str(lost)))
        going, answer = posted.going, posted.answer
        if answer is None:
            return spread(count, going, [])
        if answer.status != 200:
            raise self._refusal(answer)
        results = answer.json()
        if not isinstance(results, list) or len(results) != len(going):
            # Accepted (200), but the answer does not say what became of each message.
            why = f"Postmark's answer to the batch could not be read ({answer.text(100)})"
            return spread(count, going, Delivery("unknown", error=why))
        deliveries = [_outcome(result) for result in results]
        stops = [self._account_error(result) for result in results]
        stop = next((line for line in stops if line is not None), None)
        if stop is not None:
            # Whatever Postmark accepted (or refused for its recipient) stays so; the
            # rest waits for the fix.
            raise ProviderError(
                stop,
                deliveries=spread(
                    count,
                    going,
                    [
                        d if line is None else Delivery("deferred", error=stop)
                        for d, line in zip(deliveries, stops, strict=True)
                    ],
                ),
            )
        return spread(count, going, deliveries)

    def template(self, content: Content) -> Template | None:
        """``content``'s template at Postmark, made on first use; None: full messages
        (templates off, confirmation mail, content Postmark would misread, or Postmark
        did not take the template: the campaign goes all the same, only larger)."""
        known = self.templates.get(id(content))
        if known is not None and known[0] is content:
            return known[1]
        template = None
        if self.settings.templates and templatable(content):
            template = self._create(content)
        self.templates[id(content)] = (content, template)
        return template

    def _create(self, content: Content) -> Template | None:
        alias = new_alias(content)
        data = orjson.dumps(template_body(content, alias))
        headers = {**self.api.headers, "Content-Type": "application/json"}
        url = self.api.base_url + "/templates"
        try:
            answer = post(url, data, headers, timeout=self.api.timeout)
        except (NotSent, AnswerLost) as error:
            answer = None
            why = str(error)
        if answer is not None and answer.status == 200:
            return template_for(content, alias)
        if answer is not None:
            if answer.status == 401:
                raise self._refusal(answer)
            why = f"{answer.status}: {answer.text(200)}"
        self.notice(
            f"Postmark did not take the campaign's template ({why}); sending whole messages "
            "instead (larger requests, same mail)"
        )
        return None

    def close(self) -> None:
        """Delete the templates this provider made (a Postmark server holds at most 100)."""
        for _, template in self.templates.values():
            if template is None:
                continue
            url = f"{self.api.base_url}/templates/{template.alias}"
            try:
                post(url, b"", self.api.headers, timeout=self.api.timeout, method="DELETE")
            except (NotSent, AnswerLost):
                self.notice(
                    f"could not delete the Postmark template {template.alias}: delete it on "
                    "Postmark's Templates page"
                )
        self.templates.clear()
        super().close()

    def messages(self, batch: Batch, template: Template | None = None) -> list[dict[str, Any]]:
        content = batch.content
        stream = (
            self.settings.transactional_stream
            if content.transactional
            else self.settings.message_stream
        )
        shared: dict[str, Any] = {"From": content.sender}
        if template is None:
            shared["Subject"] = content.subject
        else:
            shared["TemplateAlias"] = template.alias
            shared["InlineCss"] = False  # the HTML is already inlined as it should be
        if content.reply_to:
            shared["ReplyTo"] = content.reply_to
        shared_headers = [
            {"Name": name, "Value": header_value(name, value)}
            for name, value in content.headers.items()
        ]
        shared["MessageStream"] = stream
        shared["TrackOpens"] = self.settings.tracking
        shared["TrackLinks"] = "HtmlAndText" if self.settings.tracking else "None"
        messages = []
        for recipient in batch.recipients:
            values = content.values_for(recipient.personalization)
            message = {**shared, "To": format_address(recipient.email, recipient.name)}
            if template is None:
                message["HtmlBody"], message["TextBody"] = content.personalize(values)
            else:
                message["TemplateModel"] = template.model(values)
            headers = shared_headers + [
                {"Name": name, "Value": header_value(name, value)}
                for name, value in recipient.headers.items()
            ]
            if headers:
                message["Headers"] = headers
            if recipient.tags:
                message["Metadata"] = dict(recipient.tags)
            messages.append(message)
        return messages

    def _account_error(self, result: Any) -> str | None:
        """The line that stops the campaign, if this per-message result is about the
        account or the sender rather than its recipient."""
        if not _about_account(result):
            return None
        code = result.get("ErrorCode")
        return self._what_to_fix(code, str(result.get("Message") or ""))

    def _what_to_fix(self, code: object, message: str) -> str:
        hint = ACCOUNT_ERRORS.get(code) if isinstance(code, int) else None
        if hint is None and "stream" in message.lower():
            hint = (
                f"create the message stream {self.settings.message_stream!r} (a Broadcast "
                "stream) on your Postmark server, or set postmark.message_stream"
            )
        hint = (hint or "fix what it says, then send again").format(
            token_env=self.settings.server_token_env
        )
        return f"Postmark refused the batch ({code}: {message}); {hint}"

    def _refusal(self, answer: Answer) -> ProviderError:
        error = answer.json()
        code = error.get("ErrorCode") if isinstance(error, dict) else None
        message = str(error.get("Message")) if isinstance(error, dict) else answer.text()
        if answer.status == 401:
            code = BAD_TOKEN
        if answer.status == 413:
            return ProviderError(
                f"Postmark says the request is too large (413: {message}); lower "
                "postmark.batch_size in newsletter.yaml"
            )
        return ProviderError(self._what_to_fix(code, message))


def _about_account(result: Any) -> bool:
    if not isinstance(result, dict):
        return False
    code = result.get("ErrorCode")
    if code in (0, INACTIVE_RECIPIENT):
        return False
    return not (code == INVALID_REQUEST and _about_recipient(str(result.get("Message") or "")))


def _about_recipient(message: str) -> bool:
    """A 300 (invalid request) about the recipient's address, not the From or the body."""
    lowered = message.lower()
    return (
        "'to'" in lowered
        or "recipient" in lowered
        or ("address" in lowered and "from" not in lowered)
    )


def _outcome(result: Any) -> Delivery:
    if not isinstance(result, dict):
        return Delivery("unknown", error="Postmark's answer for this message could not be read")
    code = result.get("ErrorCode")
    if code == 0:
        return Delivery("sent", message_id=str(result.get("MessageID") or "") or None)
    message = f"Postmark {code}: {result.get('Message') or '(no message)'}"[:500]
    return Delivery("failed", error=message)
