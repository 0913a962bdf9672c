"""The dynamic routes: subscribe, confirm, unsubscribe, preferences, health; pages from
templates/.

What each request does lives in ``publisher.signup``; here are only HTTP concerns:
forms (``publisher.web.forms``), CSRF (Fetch Metadata / Origin), rate limits, status
codes and headers. New routes go in ``build``'s table (and their path in ``links``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from publisher import site
from publisher.audience import normalise
from publisher.config import Config
from publisher.confirmations import ConfirmationSender
from publisher.errors import UnknownChoice, UsageError
from publisher.i18n import N_
from publisher.links import (
    CONFIRM,
    HEALTH,
    PREFERENCES,
    SUBSCRIBE,
    TOKEN_ROUTES,
    UNSUBSCRIBE,
    WEBHOOKS,
    Links,
)
from publisher.models import Subscriber
from publisher.signup import Leaving, Signup
from publisher.store import Store
from publisher.tokens import signer_for
from publisher.web.forms import boxes, choice, read_form, signup_choice
from publisher.web.limits import HOUR, ClientLimiter, client_key
from publisher.web.outputs import Outputs

BAD_LINK = (
    N_("This link is not valid or has expired"),
    N_(
        "Confirmation links work for 7 days, and a link cut short or changed in transit no longer "
        "works. Subscribe again below to receive a fresh confirmation link. To unsubscribe or change "
        "your newsletters, use the links at the bottom of any recent mail from us."
    ),
)
UNKNOWN_CHOICE = N_(
    "There is no newsletter or section “%(value)s” here; nothing was changed. Choose from the list."
)
NO_CHOICE = N_("Choose at least one newsletter.")


class Views:
    def __init__(self, config: Config, outputs: Outputs) -> None:
        from publisher.render import site_environment

        self.config = config
        self.outputs = outputs
        self.links = Links(config.site.base_url)
        self.env = site_environment(config)
        self.clients = ClientLimiter(config.server.requests_per_client)
        base = urlsplit(self.links.base)
        self.base_origin = f"{base.scheme}://{base.netloc}"
        self.store: Store | None = None
        self.signup: Signup | None = None
        self.mailer: ConfirmationSender | None = None
        self._chrome: dict[str, Any] | None = None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.store = Store.of(self.config)
        signer = signer_for(self.config.server.secret_env, self.store.meta.get_or_create_secret)
        self.signup = Signup(self.config, self.store, signer)
        self.mailer = ConfirmationSender(self.config, self.store, self.signup, "publish serve").start()
        try:
            await self.outputs.start(self.store)
            yield
        finally:
            await self.outputs.stop()
            self.mailer.stop()  # a mail it could not finish stays in the outbox for the next start
            if self.mailer.stopped:
                self.store.close()

    # -- pages -------------------------------------------------------------------------

    def page(
        self, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> Response:
        if self._chrome is None:  # the shared page parts depend on the config only
            self._chrome = site.page_context(self.config, self.links, self.env)
        html = self.env.get_template(template).render(**{**self._chrome, "values": {}, **context})
        return HTMLResponse(html, status_code=status, headers={**self.page_headers(), **(headers or {})})

    def page_headers(self) -> dict[str, str]:
        """Token pages must not be cached, framed, or leak their URL in a Referer."""
        ours = "'self'" + (f" {self.base_origin}" if self.base_origin else "")
        return {
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "content-security-policy": (
                f"default-src 'none'; style-src {ours} 'unsafe-inline'; img-src {ours} data:; "
                f"form-action {ours}; frame-ancestors 'none'; base-uri 'none'"
            ),
        }

    def bad_link(self) -> Response:
        heading, message = BAD_LINK
        return self.page("error.html", 400, heading=heading, message=message, offer_subscribe=True)

    def too_many(self) -> Response:
        return self.page(
            "error.html",
            429,
            headers={"retry-after": str(int(HOUR))},
            heading=N_("Too many requests"),
            message=N_(
                "Too many subscription requests came from here or for this address. Please try again in an hour."
            ),
            offer_subscribe=False,
        )

    def refused(self) -> Response:
        return self.page(
            "error.html",
            403,
            heading=N_("Request refused"),
            message=N_("This form can only be sent from the pages of %(title)s."),
            offer_subscribe=False,
        )

    def cross_site(self, request: Request) -> bool:
        """CSRF by Fetch Metadata: browsers say where a request comes from. Without
        Sec-Fetch-Site (older browsers), a present Origin must be ours; clients that
        send neither are not browsers and carry no ambient authority to abuse."""
        fetch_site = request.headers.get("sec-fetch-site")
        origin = request.headers.get("origin")
        if fetch_site in ("same-origin", "none"):
            return False
        ours = {self.base_origin, f"{request.url.scheme}://{request.headers.get('host', '')}"}
        if origin is not None:
            return origin not in ours
        return fetch_site is not None

    # -- routes ------------------------------------------------------------------------

    async def subscribe_form(self, request: Request) -> Response:
        return self.page("subscribe.html", heading=N_("Subscribe"), state="form", message="")

    def form_again(
        self, status: int, message: str, heading: str = N_("Subscribe"), **values: str
    ) -> Response:
        return self.page(
            "subscribe.html", status, heading=heading, state="form", message=message, values=values
        )

    async def subscribe(self, request: Request) -> Response:
        if self.cross_site(request):
            return self.refused()
        if not self.clients.hit(client_key(request)):
            return self.too_many()
        form = await read_form(request)
        if form is None:
            return self.form_again(413, N_("The form was too large."))
        raw = (form.get("email") or [""])[0]
        try:
            email = normalise(raw)
        except UsageError:
            return self.form_again(
                400,
                N_("That does not look like an email address. Check it and try again."),
                N_("Check the address"),
            )
        try:
            asked = {"newsletter": form["newsletter"]} if "newsletter" in form else {}  # sections: later
            chosen = choice(self.config.newsletters, asked) or signup_choice(self.config.newsletters)
        except UnknownChoice as exc:
            return self.form_again(400, UNKNOWN_CHOICE, N_("Check your choice"), value=exc.value[:80])
        if not chosen.keys:
            return self.form_again(400, NO_CHOICE, N_("Check your choice"))
        assert self.signup is not None and self.mailer is not None
        if not await run_in_threadpool(self.signup.allow, email):
            return self.too_many()
        # The mail is committed to the outbox before the answer promises it; the same
        # work for every address, so the answer and its timing tell nothing of its state.
        await run_in_threadpool(self.signup.enqueue, email, None, chosen.keys)
        self.mailer.wake()
        return self.page("subscribe.html", heading=N_("Check your inbox"), state="sent")

    async def confirm_page(self, request: Request) -> Response:
        assert self.signup is not None
        found = await run_in_threadpool(self.signup.check, "confirm", request.path_params["token"])
        if found.subscriber is None:
            return self.bad_link()
        standing = await run_in_threadpool(self.signup.standing, found.subscriber)
        if standing.pending or found.subscriber.status != "active":
            return self.page(
                "confirm.html", heading=N_("Confirm your subscription"), done=False, asked=standing.pending
            )
        return self.subscribed(standing.active, found.subscriber)

    async def confirm(self, request: Request) -> Response:
        if self.cross_site(request):
            return self.refused()
        await read_form(request)
        assert self.signup is not None
        found = await run_in_threadpool(self.signup.confirm, request.path_params["token"])
        if found.subscriber is None:
            return self.bad_link()
        standing = await run_in_threadpool(self.signup.standing, found.subscriber)
        return self.subscribed(standing.active, found.subscriber)

    def subscribed(self, receiving: list[str], sub: Subscriber) -> Response:
        assert self.signup is not None
        return self.page(
            "confirm.html",
            heading=N_("You are subscribed"),
            done=True,
            receiving=receiving,
            preferences_url=self.signup.preferences_url(sub),
        )

    async def unsubscribe_page(self, request: Request) -> Response:
        assert self.signup is not None
        found = await run_in_threadpool(self.signup.check, "unsubscribe", request.path_params["token"])
        if found.subscriber is None:
            return self.bad_link()
        leaving = await run_in_threadpool(self.signup.leaving, found)
        if leaving.done:
            return self.unsubscribed(leaving)
        return self.page(
            "unsubscribe.html",
            heading=N_("Unsubscribe"),
            done=False,
            newsletter=leaving.title,
            preferences_url=self.signup.preferences_url(found.subscriber),
        )

    async def unsubscribe(self, request: Request) -> Response:
        """RFC 8058 one-click: no CSRF check (mail providers POST from their servers),
        idempotent, the change committed before the 200 answer. The link leaves the
        newsletter its token names (``Signup.unsubscribe``)."""
        await read_form(request)
        assert self.signup is not None
        found = await run_in_threadpool(self.signup.unsubscribe, request.path_params["token"])
        if found.subscriber is None:
            return self.bad_link()
        return self.unsubscribed(await run_in_threadpool(self.signup.leaving, found))

    def unsubscribed(self, leaving: Leaving) -> Response:
        assert self.signup is not None
        return self.page(
            "unsubscribe.html",
            heading=N_("You are unsubscribed"),
            done=True,
            newsletter=leaving.title,
            remaining=leaving.remaining,
            preferences_url=self.signup.preferences_url(leaving.subscriber),
        )

    async def preferences_page(self, request: Request) -> Response:
        """The preference centre; GET and HEAD change nothing."""
        assert self.signup is not None
        found = await run_in_threadpool(self.signup.check, "preferences", request.path_params["token"])
        if found.subscriber is None:
            return self.bad_link()
        return await self.preferences(found.subscriber)

    async def save_preferences(self, request: Request) -> Response:
        """Save the reader's choices (``publisher.web.forms``); no confirmation needed:
        the signed link proves the address. A form that says nothing changes nothing."""
        if self.cross_site(request):
            return self.refused()
        form = await read_form(request)
        assert self.signup is not None
        found = await run_in_threadpool(self.signup.check, "preferences", request.path_params["token"])
        if found.subscriber is None:
            return self.bad_link()
        sub = found.subscriber
        if form is None:
            return await self.preferences(sub, 413, problem=N_("The form was too large."))
        if form.get("all") == ["unsubscribe"]:
            await run_in_threadpool(self.signup.save, sub, {})
            return await self.preferences(sub, notice=N_("You are unsubscribed from every newsletter."))
        try:
            chosen = choice(self.config.newsletters, form)
        except UnknownChoice as exc:
            return await self.preferences(sub, 400, problem=UNKNOWN_CHOICE, value=exc.value[:80])
        if chosen is None:
            return await self.preferences(
                sub, 400, problem=N_("The form held no choices; nothing was changed.")
            )
        await run_in_threadpool(self.signup.save, sub, chosen.sections)
        return await self.preferences(sub, notice=N_("Your choices are saved."))

    async def preferences(
        self, sub: Subscriber, status: int = 200, *, notice: str = "", problem: str = "", **values: str
    ) -> Response:
        assert self.signup is not None
        held = await run_in_threadpool(self.signup.subscriptions, sub)
        names = await run_in_threadpool(self.signup.section_names)
        return self.page(
            "preferences.html",
            status,
            heading=N_("Your newsletters"),
            email=sub.email,
            newsletters=boxes(self.config.newsletters, held, names),
            notice=notice,
            problem=problem,
            values=values,
        )

    async def healthz(self, request: Request) -> Response:
        """503 while the store does not answer or this node's outputs are missing or
        built from an older content version than the store's (a load balancer then
        sends readers elsewhere until ``publisher.web.outputs`` has caught up)."""
        assert self.store is not None
        headers = {"cache-control": "no-store"}
        try:
            current = await run_in_threadpool(self.store.meta.content_version)
        except Exception as exc:
            return JSONResponse({"status": "error", "store": str(exc)}, status_code=503, headers=headers)
        problem = await run_in_threadpool(self.outputs.stale, current)
        if problem is not None:
            return JSONResponse({"status": "error", "output": problem}, status_code=503, headers=headers)
        return JSONResponse({"status": "ok", "output": True}, headers=headers)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return self.page(
                "error.html",
                404,
                heading=N_("Page not found"),
                message=N_("There is nothing at this address."),
                offer_subscribe=False,
            )
        if status == 405:
            return self.page(
                "error.html",
                405,
                headers={"allow": allowed(exc)},
                heading=N_("Method not allowed"),
                message=N_("This address does not accept that kind of request."),
                offer_subscribe=False,
            )
        return self.page(
            "error.html",
            status,
            heading=N_("Something went wrong"),
            message=N_("Please try again later."),
            offer_subscribe=False,
        )


class RedactTokens(logging.Filter):
    """Access log lines without the tokens of confirm and unsubscribe links: a token
    is as good as the link, so it does not belong in logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            path = record.args[2]
            route = next((r for r in TOKEN_ROUTES if path.startswith("/" + r)), None)
            if route is not None:
                record.args = (*record.args[:2], f"/{route}[token]", *record.args[3:])
        return True


def allowed(exc: Exception) -> str:
    headers = exc.headers if isinstance(exc, HTTPException) and exc.headers else {}
    return next((v for k, v in headers.items() if k.lower() == "allow"), "")


def by_method(
    get: Callable[[Request], Awaitable[Response]], post: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """One route, two views: GET (and HEAD) show, POST acts; a 405 lists both."""

    async def view(request: Request) -> Response:
        return await (post if request.method == "POST" else get)(request)

    return view


def _webhooks(config: Config, views: Views) -> Any:
    from publisher.web.webhooks import Webhooks

    return Webhooks(config, lambda: views.store, lambda: views.signup.messages if views.signup else None)


def build(config: Config, outputs: Outputs) -> Starlette:
    views = Views(config, outputs)
    routes = [
        Route("/" + SUBSCRIBE, by_method(views.subscribe_form, views.subscribe), methods=["GET", "POST"]),
        Route(f"/{CONFIRM}{{token}}", by_method(views.confirm_page, views.confirm), methods=["GET", "POST"]),
        Route(
            f"/{UNSUBSCRIBE}{{token}}",
            by_method(views.unsubscribe_page, views.unsubscribe),
            methods=["GET", "POST"],
        ),
        Route(
            f"/{PREFERENCES}{{token}}",
            by_method(views.preferences_page, views.save_preferences),
            methods=["GET", "POST"],
        ),
        Route("/" + HEALTH, views.healthz, methods=["GET"]),
        Route(f"/{WEBHOOKS}{{provider}}", _webhooks(config, views).receive, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=views.lifespan,
        exception_handlers={404: views.not_found, 405: views.not_found, 500: views.not_found},
    )
    app.state.views = views
    return app
