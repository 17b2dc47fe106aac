"""The pages behind the links in every message: ``/u/<token>`` and ``/p/<token>``.

The token is verified before anything is looked up; a forged, truncated or foreign
one is a plain 404 that says nothing about any subscriber. A GET never changes
anything (mail scanners fetch every link); changes happen on POST only.

``POST /u/<token>`` is also the RFC 8058 one-click endpoint: a mailbox provider posts
``List-Unsubscribe=One-Click`` (urlencoded or multipart), with no cookie, so that
request carries no CSRF token; the signed token in the URL is its authority. It
answers 200 with a page, never a redirect, and repeating it changes nothing more.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, render_template, request

from newsletter.errors import ExpiredTokenError, TokenError
from newsletter.languages import N_
from newsletter.models import Subscriber
from newsletter.tokens import LinkClaim, UnsubscribeClaim
from newsletter.web.context import Services, services
from newsletter.web.forms import TOKEN_MAX, preferences_form
from newsletter.web.pages import Answer, page
from newsletter.web.security import csrf_exempt, require_csrf
from newsletter.web.signup import restart_signup

blueprint = Blueprint("links", __name__)

# Sources recorded with each unsubscribe, so the editor can tell them apart (one-click
# ones: see newsletter.web.one_click).
UNSUBSCRIBE_PAGE = "unsubscribe-page"
PREFERENCE_CENTER = "preference-center"


@blueprint.get("/u/<token>")
def unsubscribe_page(token: str) -> Response:
    site = services()
    claim = _unsubscribe_claim(site, token)
    subscriber = _subscriber(site, LinkClaim(claim.subscriber_id, claim.link_key))
    return page(
        "unsubscribe.html",
        subscriber=subscriber,
        preferences_url=site.links.preferences(subscriber.id, subscriber.link_key),
    )


@blueprint.post("/u/<token>")
@csrf_exempt  # the one-click POST has no cookie; the page's own form is checked below
def unsubscribe(token: str) -> Response:
    site = services()
    claim = _unsubscribe_claim(site, token)
    if request.form.get("List-Unsubscribe") == "One-Click":
        # A mailbox provider's server sends this and nobody reads the answer: one write
        # (grouped with concurrent ones) and a short, impersonal page.
        site.one_click.unsubscribe(claim.subscriber_id, claim.campaign_id, claim.link_key)
        return _one_click_answer(site)
    require_csrf()
    subscriber = _subscriber(site, LinkClaim(claim.subscriber_id, claim.link_key))
    if request.form.get("action") == "resubscribe":
        if not site.store.resubscribe(
            subscriber.id, source=UNSUBSCRIBE_PAGE, ip=request.remote_addr
        ) and restart_signup(site, subscriber, source=UNSUBSCRIBE_PAGE):
            return page("check_inbox.html", email=subscriber.email)
        return page(
            "resubscribed.html",
            subscriber=site.store.get(subscriber.id) or subscriber,
            preferences_url=site.links.preferences(subscriber.id, subscriber.link_key),
        )
    if site.store.unsubscribe(
        subscriber.id, source=UNSUBSCRIBE_PAGE, campaign_id=claim.campaign_id
    ):
        subscriber = replace(subscriber, status="unsubscribed")
    return page("unsubscribed.html", subscriber=subscriber)


@blueprint.route("/p/<token>", methods=["GET", "POST"])
def preferences(token: str) -> Response:
    site = services()
    subscriber = _subscriber(site, _preferences_claim(site, token))
    form = None
    notice = ""
    if request.method == "POST":
        action = request.form.get("action")
        if action == "save":
            form = preferences_form(request.form, site.config)
            if form.ok:
                subscriber = site.store.update_preferences(
                    subscriber.id, name=form.name, topics=form.topics
                )
                notice = N_("Your preferences are saved.")
        elif action == "unsubscribe":
            site.store.unsubscribe(subscriber.id, source=PREFERENCE_CENTER)
            notice = N_("You are unsubscribed. You will not receive the newsletter any more.")
        elif action == "resubscribe":
            if site.store.resubscribe(
                subscriber.id, source=PREFERENCE_CENTER, ip=request.remote_addr
            ):
                notice = N_("Welcome back: you are subscribed again.")
            elif restart_signup(site, subscriber, source=PREFERENCE_CENTER):
                # Never confirmed: only the confirmation link makes them a subscriber.
                notice = N_(
                    "Please confirm: we sent a link to your address. You will be subscribed "
                    "once you open it."
                )
        else:
            return page("message.html", status=400, title=N_("Unknown action"), message="")
        subscriber = site.store.get(subscriber.id) or subscriber
    return page(
        "preferences.html",
        status=400 if form is not None and not form.ok else 200,
        subscriber=subscriber,
        form=form,
        notice=notice,
        selected=set(form.topics if form else subscriber.topics),
        name=form.name if form else subscriber.name,
    )


def _one_click_answer(site: Services) -> Response:
    # The same for everyone (no nonce, no form, no name): rendered once, then reused.
    if site.one_click_page is None:
        site.one_click_page = render_template("one_click.html")
    return Response(site.one_click_page, mimetype="text/html")


def _unsubscribe_claim(site: Services, token: str) -> UnsubscribeClaim:
    if len(token) > TOKEN_MAX:
        raise Answer(_invalid_link())
    try:
        return site.signer.read_unsubscribe_token(token)
    except TokenError:
        raise Answer(_invalid_link()) from None


def _preferences_claim(site: Services, token: str) -> LinkClaim:
    if len(token) > TOKEN_MAX:
        raise Answer(_invalid_link())
    try:
        return site.signer.read_preferences_or_manage_token(
            token, max_age_seconds=site.link_max_age
        )
    except ExpiredTokenError:
        raise Answer(
            page(
                "expired.html",
                status=400,
                what=N_("This link to your preferences has expired."),
                again_url="/manage",
                again_text=N_("Email me a new link"),
            )
        ) from None
    except TokenError:
        raise Answer(_invalid_link()) from None


def _subscriber(site: Services, claim: LinkClaim) -> Subscriber:
    subscriber = site.store.holder(claim.subscriber_id, claim.link_key)
    if subscriber is None:
        # A genuine link whose subscriber was erased (a row with the same id would be
        # someone else, whose link key differs): nothing to show, nothing to mail.
        raise Answer(
            page(
                "message.html",
                title=N_("You are not subscribed"),
                message=N_("This address is not on our list. You will not receive the newsletter."),
            )
        )
    return subscriber


def _invalid_link() -> Response:
    return page(
        "message.html",
        status=404,
        title=N_("This link is not valid"),
        message=N_("Please use the link exactly as it appears in the email, or ask for a new one."),
        show_manage_link=True,
    )
