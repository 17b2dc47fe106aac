"""What SES's answers mean, for both ways the SES provider sends (``ses.py``, one raw
``SendEmail`` a reader; ``ses_bulk.py``, ``SendBulkEmail``): which error codes mean
"try later", which are about the credentials or one address, and the one line that
stops a campaign for an account or configuration problem; for ``SendBulkEmail``,
what each entry's result status means."""

from __future__ import annotations

from typing import Any

from newsletter.errors import ProviderError

RETRY_CODES = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
RECIPIENT_PROBLEMS = (
    "illegal address",
    "missing final '@domain'",
    "invalid address",
    "local address",
)

RETRY_STATUSES = frozenset({"ACCOUNT_THROTTLED", "TRANSIENT_FAILURE"})
# Entry results that refuse this message only (its address, its parameters).
READER_STATUSES = frozenset({"MESSAGE_REJECTED", "INVALID_PARAMETER", "FAILED"})
# Entry results about the account or its configuration: what to do about each.
ACCOUNT_STATUSES = {
    "MAIL_FROM_DOMAIN_NOT_VERIFIED": "verify the From address or its domain in SES ({region})",
    "CONFIGURATION_SET_NOT_FOUND": "create the configuration set {configuration_set!r} in "
    "SES ({region}) or fix ses.configuration_set",
    "TEMPLATE_NOT_FOUND": "the campaign's SES template was deleted while it was sending: "
    "send again (it makes a new one)",
    "ACCOUNT_SUSPENDED": "sending is paused for this SES account in {region}: see the SES console",
    "ACCOUNT_SENDING_PAUSED": "sending is paused for this SES account in {region}: see the "
    "SES console",
    "CONFIGURATION_SET_SENDING_PAUSED": "sending is paused for the configuration set "
    "{configuration_set!r}: resume it in the SES console ({region})",
    "ACCOUNT_DAILY_QUOTA_EXCEEDED": "the account's 24-hour sending quota is used up: send "
    "again tomorrow",
    "INVALID_SENDING_POOL_NAME": "the configuration set {configuration_set!r} names a "
    "dedicated IP pool that does not exist: fix it in the SES console ({region})",
}


def refusal(
    code: str, text: str, *, region: str, configuration_set: str | None, sender: str = ""
) -> ProviderError:
    """The campaign-stopping line for an account or configuration problem."""
    lowered = text.lower()
    if code in CREDENTIAL_CODES:
        hint = (
            "check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the "
            f"profile) and that they may use ses:SendEmail in {region}"
        )
    elif "not verified" in lowered and sender and sender.lower() not in lowered:
        # The identities that failed the check are named; not the From: the recipient.
        hint = (
            f"the SES account is in the sandbox in {region}: it sends only to verified "
            "addresses; request production access in the SES console"
        )
    elif (
        "not verified" in lowered
        or "authority to send" in lowered
        or code == "MailFromDomainNotVerifiedException"
    ):
        hint = f"verify the From address or its domain in SES ({region})"
    elif code == "NotFoundException" and configuration_set:
        hint = (
            f"create the configuration set {configuration_set!r} in SES "
            f"({region}) or fix ses.configuration_set"
        )
    elif code in ("AccountSuspendedException", "SendingPausedException"):
        hint = f"sending is paused for this SES account in {region}: see the SES console"
    elif "quota" in lowered:
        hint = "the account's 24-hour sending quota is used up: send again tomorrow"
    else:
        hint = "fix what it says, then send again"
    return ProviderError(f"SES refused the message ({code}: {text}); {hint}")


NO_CREDENTIALS = (
    "no AWS credentials for SES: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
    "AWS_PROFILE), or run where an instance role provides them"
)


def error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code") or "Unknown")


def error_message(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Message") or "(no message)")[:400]


def is_rate_limit(code: str, text: str) -> bool:
    if code in RETRY_CODES:
        return True
    return code == "LimitExceededException" and "rate" in text.lower()


def about_recipient(text: str) -> bool:
    lowered = text.lower()
    return any(problem in lowered for problem in RECIPIENT_PROBLEMS)


def entry_refusal(
    status: str, text: str, *, region: str, configuration_set: str | None, sender: str
) -> ProviderError:
    """The campaign-stopping line for a ``SendBulkEmail`` entry's status about the
    account or its configuration."""
    hint = ACCOUNT_STATUSES.get(status)
    if hint is None:  # a sandbox's "not verified", or a status SES added since
        return refusal(
            status, text, region=region, configuration_set=configuration_set, sender=sender
        )
    hint = hint.format(region=region, configuration_set=configuration_set)
    return ProviderError(f"SES refused the message ({status}: {text}); {hint}")
