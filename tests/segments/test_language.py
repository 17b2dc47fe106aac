"""What the segment language accepts, and what its errors say."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.errors import SegmentError
from newsletter.segments.language import And, Condition, Not, Or, parse
from newsletter.segments.saved import resolve

FIELDS = (
    "topics, status, source, email, attributes, subscribed, confirmed, received, "
    "bounced_soft, clicked, opened"
)


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    tree = parse('not status == "active" and topics contains "a" or received >= 3')
    assert tree == Or(
        (
            And(
                (
                    Not(Condition("status", "==", "active")),
                    Condition("topics", "contains", "a"),
                )
            ),
            Condition("received", ">=", 3),
        )
    )


def test_parentheses_keywords_in_any_case_and_both_kinds_of_quotes() -> None:
    tree = parse("""NOT (attributes['First Name'] == 'Ann' OR clicked WITHIN 1 day)""")
    assert tree == Not(
        Or(
            (
                Condition("attributes", "==", "Ann", "First Name"),
                Condition("clicked", "within", 1),
            )
        )
    )


def test_values_lists_dates_and_escapes() -> None:
    assert parse('source in ["a", "b\\"c"]') == Condition("source", "in", ("a", 'b"c'))
    assert parse('subscribed >= "2026-01-31"') == Condition(
        "subscribed", ">=", dt.date(2026, 1, 31)
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("attributes.country ==", 'position 22: expected a "quoted" value, found end of input'),
        (
            'attributes.country = "GB"',
            "position 20: unexpected '='; expected a field, a \"quoted value\", a number, "
            "an operator or a parenthesis",
        ),
        ("clicked within 90", "position 18: expected 'days', found end of input"),
        ("clicked >= 3", "position 9: expected 'within' after 'clicked', found '>='"),
        ('(status == "active"', "position 20: expected ')', found end of input"),
        (
            'status == "gone"',
            "position 11: expected a status (pending, active, unsubscribed, bounced, "
            'complained), found "gone"',
        ),
        ('received >= "3"', "position 13: expected a whole number, found '\"3\"'"),
        (
            'subscribed >= "2026-13-01"',
            'position 15: expected a date as "YYYY-MM-DD", found \'"2026-13-01"\'',
        ),
        (
            'colour == "red"',
            f"position 1: expected a field ({FIELDS}) or '(' or 'not', found 'colour'",
        ),
        (
            'status == "active" status',
            "position 20: expected 'and', 'or' or the end, found 'status'",
        ),
        ('topics in ["a" "b"]', "position 16: expected ',' or ']', found '\"b\"'"),
        (
            'attributes == "x"',
            "position 12: expected '.' and an attribute name (attributes.country), found '=='",
        ),
        (
            'subscribed contains "2026"',
            "position 12: expected one of == != < <= > >= within "
            "after 'subscribed', found 'contains'",
        ),
        ("", "position 1: expected a condition, found nothing"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(SegmentError) as raised:
        parse(text)
    assert str(raised.value) == message


def test_deep_nesting_and_long_text_are_refused_in_time() -> None:
    with pytest.raises(SegmentError, match="at most 50 levels"):
        parse("(" * 1000 + 'status == "active"' + ")" * 1000)
    with pytest.raises(SegmentError, match="at most 4000 characters"):
        parse('status == "active" or ' * 400 + 'status == "active"')


def test_a_name_is_looked_up_and_an_expression_parsed() -> None:
    saved = {"uk": 'attributes.country == "GB"'}
    assert resolve(saved, "uk").tree == Condition("attributes", "==", "GB", "country")
    assert resolve(saved, "uk").label == 'uk (attributes.country == "GB")'
    assert resolve(saved, "received >= 1").name == ""
    with pytest.raises(SegmentError) as unknown:
        resolve(saved, "fr")
    assert str(unknown.value) == (
        "unknown segment 'fr'; newsletter.yaml defines: uk; or give an expression such as "
        "'attributes.country == \"GB\"'"
    )
    with pytest.raises(SegmentError) as bad:
        resolve(saved, "received >=")
    assert str(bad.value) == (
        "segment 'received >=': position 12: expected a whole number, found end of input"
    )


def test_an_unknown_topic_is_named_with_its_position() -> None:
    given = 'status == "active" and topics in ["research", "recipes"] or topics contains "x"'
    with pytest.raises(SegmentError) as raised:
        resolve({}, given, ["research"])
    assert str(raised.value) == (
        f"segment {given!r}: position 47: unknown topic 'recipes'; known topics: research"
    )
    assert resolve({}, 'topics in ["research"]', ["research"]).tree == Condition(
        "topics", "in", ("research",)
    )
