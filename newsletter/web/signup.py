"""Signing up (double opt-in) and asking for a link: ``/subscribe``, ``/confirm``, ``/manage``.

Both forms answer "check your inbox" whatever the address, so they cannot be used to
learn who subscribes; the mail itself goes out in the background (see
:mod:`newsletter.web.postman`). Both are rate-limited per client and per address, so
neither can flood a stranger's inbox.

A confirmation link only shows a page with a button, which POSTs the confirmation:
mail scanners that open the link, even in a browser that runs script, confirm
nothing; the person needs one click. (See docs/web.md, "Double opt-in and link
scanners", for why no script presses the button.)
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace

from flask import Blueprint, Response, abort, render_template, request
from werkzeug.exceptions import TooManyRequests

from newsletter.errors import ExpiredTokenError, StoreError, TokenError
from newsletter.languages import N_
from newsletter.models import Subscriber
from newsletter.web.context import Services, services
from newsletter.web.forms import TOKEN_MAX, FormResult, is_bot, manage_form, signup_form
from newsletter.web.limits import DAY, HOUR, address_key, client_key
from newsletter.web.pages import Answer, page
from newsletter.web.postman import Letter

log = logging.getLogger(__name__)

blueprint = Blueprint("signup", __name__)

SIGNUP_SOURCE = "signup-form"
PENDING_SWEEP_SECONDS = 600


@blueprint.route("/subscribe", methods=["GET", "POST"])
def subscribe() -> Response:
    site = services()
    if request.method == "GET":
        # The Subscribe form of the public site (a static page) sends the address here.
        email = request.args.get("email", "")[:320]
        topics = tuple(site.config.topic_ids)
        return page("subscribe.html", form=FormResult(email=email, topics=topics))
    if is_bot(request.form):
        log.info("signup form: honeypot filled in; nothing done")
        return page("check_inbox.html", email=request.form.get("email", ""))
    _limit_client(site)
    form = signup_form(request.form, site.config)
    if not form.ok:
        return page("subscribe.html", status=400, form=form)
    _expire_pending_signups(site)
    if _address_may_receive_mail(site, form.email):
        _sign_up(site, form)
    return page("check_inbox.html", email=form.email)


@blueprint.route("/manage", methods=["GET", "POST"])
def manage() -> Response:
    site = services()
    if request.method == "GET":
        return page("manage.html", form=FormResult())
    _limit_client(site)
    form = manage_form(request.form)
    if not form.ok:
        return page("manage.html", status=400, form=form)
    if _address_may_receive_mail(site, form.email):
        subscriber = site.store.find(form.email)
        if subscriber is not None and subscriber.status == "pending":
            _post_confirmation(site, subscriber)
        elif subscriber is not None and subscriber.status in ("active", "unsubscribed"):
            _post_manage_link(site, subscriber)
    return page("check_inbox.html", email=form.email, manage=True)


@blueprint.get("/confirm/<token>")
def confirm_page(token: str) -> Response:
    site = services()
    subscriber = _confirmable(site, token)
    if subscriber.status == "active":
        return _already_confirmed(site, subscriber)
    return page("confirm.html", subscriber=subscriber)


@blueprint.post("/confirm/<token>")
def confirm(token: str) -> Response:
    site = services()
    subscriber = _confirmable(site, token)
    if not site.store.confirm(subscriber.id, ip=request.remote_addr):
        # A replayed confirmation: the first one counted, this one changes nothing.
        return _already_confirmed(site, subscriber)
    return page(
        "confirmed.html",
        subscriber=subscriber,
        preferences_url=site.links.preferences(subscriber.id, subscriber.link_key),
    )


def restart_signup(site: Services, subscriber: Subscriber, *, source: str) -> bool:
    """ "Subscribe again" from someone who never confirmed: pending again, and a fresh
    confirmation link (within the per-address mail limit). False if not their case."""
    if not site.store.restart_signup(subscriber.id, source=source, ip=request.remote_addr):
        return False
    if _address_may_receive_mail(site, subscriber.email):
        _post_confirmation(site, subscriber)
    return True


def _sign_up(site: Services, form: FormResult) -> None:
    existing = site.store.find(form.email)
    if existing is None:
        try:
            subscriber = site.store.add(
                form.email,
                name=form.name,
                topics=form.topics,
                status="pending",
                source=SIGNUP_SOURCE,
                ip=request.remote_addr,
                attributes={"consent": site.consent_text},
                own_request=True,  # an erased person may come back, once they confirm
            )
        except StoreError as error:
            log.info("signup not recorded: %s", error)
            return
        _post_confirmation(site, subscriber)
    elif existing.status == "pending":
        _post_confirmation(site, existing)
    elif existing.status in ("active", "unsubscribed"):
        # No second subscriber: tell the owner of the address how to manage (or restart)
        # the subscription they have. Bounced and complained addresses get no mail at all.
        _post_manage_link(site, existing)


def _post_confirmation(site: Services, subscriber: Subscriber) -> None:
    _post(
        site,
        "confirm",
        subscriber,
        subject=site.catalog.gettext("Confirm your subscription to %(name)s")
        % {"name": site.config.name},
        url=site.links.confirm(subscriber.id, subscriber.link_key),
    )


def _post_manage_link(site: Services, subscriber: Subscriber) -> None:
    _post(
        site,
        "manage",
        subscriber,
        subject=site.catalog.gettext("Your link to manage %(name)s") % {"name": site.config.name},
        url=site.links.manage(subscriber.id, subscriber.link_key),
    )


def _post(site: Services, kind: str, subscriber: Subscriber, *, subject: str, url: str) -> None:
    context = {
        # Nothing typed into a form goes into mail from the newsletter's own domain: a
        # stranger could sign up someone else's address with a "name" full of links.
        "subscriber": replace(subscriber, name="", attributes={}),
        "url": url,
        "days": site.config.web.link_max_age_days,
        "subject": subject,
    }
    site.postman.post(
        Letter(
            to=subscriber.email,
            subject=subject,
            html=render_template(f"mail/{kind}.html", **context),
            text=render_template(f"mail/{kind}.txt", **context),
        )
    )


def _confirmable(site: Services, token: str) -> Subscriber:
    """The pending or active subscriber a confirmation link is for; else a plain answer."""
    try:
        if len(token) > TOKEN_MAX:
            raise TokenError("too long")
        claim = site.signer.read_confirm_token(token, max_age_seconds=site.link_max_age)
    except ExpiredTokenError:
        raise Answer(
            page(
                "expired.html",
                status=400,
                what=N_("This confirmation link has expired."),
                again_url="/subscribe",
                again_text=N_("Sign up again"),
            )
        ) from None
    except TokenError:
        abort(404)
    subscriber = site.store.holder(claim.subscriber_id, claim.link_key)
    if subscriber is None or subscriber.status not in ("pending", "active"):
        abort(404)
    return subscriber


def _already_confirmed(site: Services, subscriber: Subscriber) -> Response:
    return page(
        "confirmed.html",
        subscriber=subscriber,
        already=True,
        preferences_url=site.links.preferences(subscriber.id, subscriber.link_key),
    )


def _limit_client(site: Services) -> None:
    allowed = site.limiter.allow(
        "form-client",
        client_key(request.remote_addr),
        limit=site.config.web.forms_per_client_per_hour,
    )
    if not allowed:
        raise TooManyRequests(retry_after=HOUR)


def _address_may_receive_mail(site: Services, email: str) -> bool:
    # Counted before any lookup, so known and unknown addresses behave the same.
    mailbox = address_key(email)
    allowed = site.limiter.allow(
        "mail-address", mailbox, limit=site.config.web.mails_per_address_per_hour
    )
    if not allowed:
        log.info("form mail not sent: the address reached its hourly limit")
    elif site.store.is_erased(email):
        # The person asked to be forgotten: whoever types the address in, it gets at
        # most one confirmation a day (its own new signup still works).
        allowed = site.limiter.allow("mail-erased-address", mailbox, limit=1, window=DAY)
        if not allowed:
            log.info("form mail not sent: an erased address gets one confirmation a day")
    return allowed


def _expire_pending_signups(site: Services) -> None:
    """Delete signups never confirmed within ``web.pending_signup_days``, at most once
    every few minutes per process (a signup is a fine moment: it adds one)."""
    now = time.monotonic()
    if now < site.next_pending_sweep:
        return
    site.next_pending_sweep = now + PENDING_SWEEP_SECONDS
    days = site.config.web.pending_signup_days
    expired = site.store.expire_pending(
        source=SIGNUP_SOURCE, older_than=dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    )
    if expired:
        log.info("deleted %d signups not confirmed within %d days", expired, days)
