"""How a send runs: its pace and retries (``sending:``), first-party click and open
counting (``tracking:``) and subject tests (``ab:``, and an issue's own ``ab:``)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import Field, PlainValidator

from newsletter.config.fields import Schema


class SendingSettings(Schema):
    rate: float | None = Field(None, gt=0, description="Messages per second (all connections).")
    per_hour: int | None = Field(None, gt=0, description="Cap per rolling hour.")
    per_day: int | None = Field(None, gt=0, description="Cap per rolling day.")
    batch_size: int = Field(
        500, ge=1, le=1000, description="Recipients per ledger batch (outbox, smtp)."
    )
    retries: int = Field(
        5, ge=0, le=20, description="Retries of a 'try later' answer before pausing."
    )
    retry_delay: float = Field(1.0, gt=0, description="Seconds before the first retry.")
    retry_max_delay: float = Field(60.0, gt=0, description="Longest wait between retries.")


class TrackingSettings(Schema):
    clicks: bool = Field(
        False,
        description="Count clicks first-party: links in mail point at site_url/c/<token>, "
        "which counts the click and redirects to the original address.",
    )
    opens: bool = Field(
        False, description="Count opens with a one-pixel image from site_url/o/<token>."
    )
    per_subscriber: bool = Field(
        False,
        description="Also keep who clicked which link (say so in your privacy notice); "
        "otherwise only counts per link and campaign are kept.",
    )


def _sample_percent(value: object) -> float:
    """``20%`` (or a plain number of percent) as a float; 0 and 100 leave no test."""
    text = str(value).strip() if isinstance(value, str | int | float) else ""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%?", text)
    if isinstance(value, bool) or match is None or not 0 < float(match[1]) < 100:
        raise ValueError(
            f"cannot read {value!r} as a sample; write a percentage of the audience "
            "above 0 and below 100, like '20%'"
        )
    return float(match[1])


_WAIT_UNITS = {
    "m": 60,
    "min": 60,
    "minutes": 60,
    "h": 3600,
    "hours": 3600,
    "d": 86400,
    "days": 86400,
}


def _wait(value: object) -> dt.timedelta:
    """``4h``, ``90m``, ``1d`` (or ``4 hours``) as a timedelta, a minute to 30 days."""
    if isinstance(value, dt.timedelta):
        wait = value
    else:
        match = re.fullmatch(r"(\d+)\s*([a-z]+)", str(value).strip().lower())
        unit = _WAIT_UNITS.get(match[2]) if match else None
        if match is None or unit is None or isinstance(value, bool):
            raise ValueError(
                f"cannot read {value!r} as a wait; write a number and m, h or d, like '4h'"
            )
        wait = dt.timedelta(seconds=int(match[1]) * unit)
    if not dt.timedelta(minutes=1) <= wait <= dt.timedelta(days=30):
        raise ValueError("the wait must be between 1 minute and 30 days, like '4h'")
    return wait


SamplePercent = Annotated[float, PlainValidator(_sample_percent)]
Wait = Annotated[dt.timedelta, PlainValidator(_wait)]
Metric = Literal["clicks", "opens"]


class AbSettings(Schema):
    """How a subject test runs (an issue's ``subject_variants:``): docs/subject-tests.md."""

    sample: SamplePercent = Field(
        "20%",
        validate_default=True,
        description="The share of the audience that gets the variants, split evenly and "
        "at random, like '20%'; the rest get the winner.",
    )
    wait: Wait = Field(
        "4h",
        validate_default=True,
        description="How long after the sample went out the winner is picked and sent to "
        "the rest (by 'newsletter run-due'), like '4h', '90m' or '1d'.",
    )
    metric: Metric = Field(
        "clicks",
        description="What makes a variant win: the share of its readers who "
        "clicked (clicks) or opened (opens), each reader once.",
    )
    min_events: int = Field(
        10,
        ge=1,
        description="Fewer readers than this who clicked (or opened) in the whole sample "
        "is too little to tell: the first variant is sent, and the report says why.",
    )


class AbOverrides(Schema):
    """An issue's own ``ab:``: any of the config's ``ab:`` keys, for this issue only."""

    sample: SamplePercent | None = None
    wait: Wait | None = None
    metric: Metric | None = None
    min_events: int | None = Field(None, ge=1)
