"""Postmark campaigns through a template: each message only its reader's values, the
mail the same as whole messages would be."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.send.providers import Batch, Content, Recipient
from newsletter.send.providers.postmark import PostmarkProvider
from tests.fakes.postmark import SERVER_TOKEN, FakePostmark, mustachio

SENDER = "Letters <letters@breastfeedingworld.example>"
HTML = (
    "<p>Dear [[html:greeting_name]] ([[html:name]]),</p><p>{greeting}</p>"
    '<a href="[[html:unsubscribe_url]]">Unsubscribe [[html:email]]</a>'
)
TEXT = (
    "Dear [[text:greeting_name]] ([[text:name]]), {greeting}\nUnsubscribe: [[text:unsubscribe_url]]"
)


@pytest.fixture
def postmark(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePostmark]:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", SERVER_TOKEN)
    with FakePostmark() as fake:
        yield fake


def provider(
    configure: Callable[..., Config], fake: FakePostmark, **settings: object
) -> PostmarkProvider:
    config = configure(provider="postmark", postmark={"api_url": fake.url, **settings})
    return PostmarkProvider(config)


def content(greeting: str = "Hello") -> Content:
    return Content(
        sender=SENDER,
        sender_email="letters@breastfeedingworld.example",
        sender_name="Letters",
        subject="Issue 7: milk & <science>",
        html=HTML.format(greeting=greeting),
        text=TEXT.format(greeting=greeting),
        headers={"List-Id": "<letters.breastfeedingworld.example>"},
    )


def readers() -> list[Recipient]:
    names = ['Ann <b>& "Bo"', "", "Émile {{ no }} Zola"]
    return [
        Recipient(
            Personalization(
                email=f"r{n}@example.org",
                name=name,
                unsubscribe_url=f"https://example.org/u?t={n}&x=<{n}>",
            ),
            headers={"List-Unsubscribe": f"<https://example.org/u?t={n}>"},
            tags={"campaign_id": "1", "subscriber_id": str(n)},
        )
        for n, name in enumerate(names)
    ]


def sent_as_whole_messages(content: Content) -> list[tuple[str, str, str]]:
    values = [content.values_for(r.personalization) for r in readers()]
    return [(content.subject, *content.personalize(v)) for v in values]


def test_templated_mail_reads_exactly_as_whole_messages_would(
    configure: Callable[..., Config], postmark: FakePostmark
) -> None:
    issue = content()
    with provider(configure, postmark) as sender:
        deliveries = sender.send_batch(Batch(issue, readers()))
        assert len(postmark.templates) == 1  # made once, kept while the provider sends
        sender.send_batch(Batch(issue, readers()[:1]))
        assert postmark.templates_made == 1

    assert [d.status for d in deliveries] == ["sent"] * 3
    assert postmark.batch_paths == ["/email/batchWithTemplates"] * 2
    assert postmark.templates == {}  # deleted when the provider closed
    got = [(m["Subject"], m["HtmlBody"], m["TextBody"]) for m in postmark.accepted[:3]]
    assert got == sent_as_whole_messages(issue)
    assert "Ann &lt;b&gt;&amp; &quot;Bo&quot;" in got[0][1]
    assert '(Ann <b>& "Bo"),' in got[0][2]
    # Each reader's own List-Unsubscribe, as with whole messages.
    unsubscribes = [m["List-Unsubscribe"] for m in postmark.messages()[:3]]
    assert unsubscribes == [f"<https://example.org/u?t={n}>" for n in range(3)]


@pytest.mark.parametrize(
    ("why", "settings", "greeting"),
    [
        ("templates off", {"templates": False}, "Hello"),
        ("content that Postmark would read as Mustachio", {}, "Write {{ name }} to greet"),
    ],
)
def test_whole_messages_when_templates_are_off_or_would_misread_the_content(
    configure: Callable[..., Config],
    postmark: FakePostmark,
    why: str,
    settings: dict[str, object],
    greeting: str,
) -> None:
    issue = content(greeting)
    with provider(configure, postmark, **settings) as sender:
        deliveries = sender.send_batch(Batch(issue, readers()))

    assert [d.status for d in deliveries] == ["sent"] * 3, why
    assert postmark.batch_paths == ["/email/batch"]
    assert postmark.templates_made == 0
    got = [(m["Subject"], m["HtmlBody"], m["TextBody"]) for m in postmark.accepted]
    assert got == sent_as_whole_messages(issue)


def test_a_server_full_of_templates_still_sends_the_campaign_as_whole_messages(
    configure: Callable[..., Config], postmark: FakePostmark
) -> None:
    for n in range(100):
        postmark.templates[f"t{n}"] = {"Alias": f"t{n}", "TemplateId": n}
    notices: list[str] = []
    with provider(configure, postmark) as sender:
        sender.notify = notices.append
        deliveries = sender.send_batch(Batch(content(), readers()))

    assert [d.status for d in deliveries] == ["sent"] * 3
    assert postmark.batch_paths == ["/email/batch"]
    assert notices == [
        'postmark: Postmark did not take the campaign\'s template (422: {"ErrorCode": 1105, '
        '"Message": "This server already holds 100 templates."}); sending whole '
        "messages instead (larger requests, same mail)"
    ]


def test_the_stand_in_renders_mustachio_variables() -> None:
    model = {"a": "<x>", "p": {"n": "Ann & Bo"}}
    assert (
        mustachio("{{a}}|{{{ a }}}|{{ p.n }}|{{missing}}!", model) == "&lt;x&gt;|<x>|Ann &amp; Bo|!"
    )


def test_the_stand_in_refuses_templates_and_batches_postmark_refuses(
    postmark: FakePostmark,
) -> None:
    from newsletter.send.providers.http_api import post

    headers = {"X-Postmark-Server-Token": SERVER_TOKEN, "Content-Type": "application/json"}
    good = {"Name": "n", "Alias": "issue-7", "Subject": "S", "TextBody": "Hi {{{ t_name }}}"}

    def make(body: dict[str, object]) -> tuple[int, object]:
        answer = post(postmark.url + "/templates", json.dumps(body).encode(), headers, timeout=60)
        return answer.status, answer.json().get("ErrorCode")

    assert make({**good, "Alias": "7-issue"}) == (422, 300)  # must start with a letter
    assert make({**good, "Subject": ""}) == (422, 300)
    assert make({**good, "TextBody": "{{#each x}}{{/each}}"}) == (422, 300)
    assert make(good) == (200, None)
    assert make(good) == (422, 1123)  # the alias is taken

    batch = postmark.url + "/email/batchWithTemplates"
    message = {"From": "letters@breastfeedingworld.example", "To": "a@example.org",
               "MessageStream": "broadcast"}  # fmt: skip
    bare_array = post(batch, json.dumps([message]).encode(), headers, timeout=60)
    assert bare_array.status == 422
    answer = post(
        batch,
        json.dumps({"Messages": [
            {**message, "TemplateAlias": "nope", "TemplateModel": {}},
            {**message, "TemplateAlias": "issue-7"},
            {**message, "TemplateAlias": "issue-7", "TemplateModel": {"t_name": "<Ann>"}},
        ]}).encode(),
        headers,
        timeout=60,
    )  # fmt: skip
    assert [r["ErrorCode"] for r in answer.json()] == [1101, 300, 0]
    assert postmark.accepted[0]["TextBody"] == "Hi <Ann>"
