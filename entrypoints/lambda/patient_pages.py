"""Lambda handler of the patients' pages: `GET /p/{token}` and its form `POST`s, no API key.

A token is an appointment's link (`confirmar`, `cancelar`, `reprogramar`) or a waitlist
offer's (`aceptar`, `rechazar`); an action of the other kind is a `404`. Accepting an offer
leads (`303`) to the page of the appointment it booked, again on a repeat; declining leads
back to the offer's page with its notice; accepting too late, or opening an expired offer
link, is a `410` page that says the offer expired.

API Gateway sends `/p/{token}` and `/p/{token}/{action}` here without an API key (the token is
the capability; the stage's WAF rate rule covers them). Each request proves its token, runs
one `PatientPages` use case and answers HTML: the page, or `303 See Other` back to it after an
action (so a reload never posts twice), a plain `404` for a bad token, `410` for an expired
one. CSRF needs no token of its own: state changes are POST only and the URL itself is the
capability, which another site cannot know. Pages are `no-store` and send no referrer, so the
link stays out of shared caches and other sites' logs.

Logs carry the route template and a short hash of the token (`link_id`), never the token.

Handler string: `entrypoints.lambda.patient_pages.handler`.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from domain.errors import TemporarilyUnavailable
from domain.links import InvalidLink
from domain.messages import local_until, local_when
from domain.use_cases.pages import OfferGone, OfferState, PageGone, PageState, PatientPages
from entrypoints import pages
from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.context import LocalContext
from entrypoints.messages import failure_fields
from entrypoints.observability import logger, metrics

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
ACTIONS: Final = ("confirmar", "cancelar", "reprogramar")
OFFER_ACTIONS: Final = ("aceptar", "rechazar")
# What this function serves, as API Gateway and OpenAPI name it.
ROUTES: Final = frozenset({("GET", "/p/{token}"), ("POST", "/p/{token}/{action}")})
# A form carries one field; anything this big is not our form.
MAX_FORM_BYTES: Final = 2048
_HEADERS: Final = {
    "Content-Type": "text/html; charset=utf-8",
    # The link is the capability: never kept by a shared cache, never sent on as a referrer.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
_one_at_a_time = threading.Lock()


def link_id(token: str) -> str:
    """What a log may say of a token: a short hash, the same for every request of one link."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


def _html(status: int, body: str, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    headers = {**_HEADERS, **(extra or {})}
    return {
        "statusCode": status,
        "body": body,
        "isBase64Encoded": False,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
    }


def view_of(state: PageState, token: str, notice: str | None) -> pages.PageView:
    """The page's view of `state`: Spanish dates on the clinic's clock, slots grouped by day."""
    appointment = state.appointment
    starts = [start for _, day_starts in state.days for start in day_starts]
    return pages.PageView(
        clinic_name=state.clinic.name,
        doctor_name=state.doctor.name if state.doctor is not None else "tu médico",
        when=local_when(appointment.start, appointment.time_zone),
        status=str(appointment.status),
        can_confirm=state.can_confirm,
        can_cancel=state.can_cancel,
        can_reschedule=state.can_reschedule,
        days=pages.day_choices(starts, appointment.time_zone),
        notice=notice if notice in pages.NOTICES else None,
        token=token,
    )


def offer_view_of(state: OfferState, token: str, notice: str | None) -> pages.OfferView:
    """The offer page's view of `state`: the held slot on the clinic's clock, while live."""
    offer = state.entry.offer if state.live else None
    zone = state.entry.time_zone
    return pages.OfferView(
        clinic_name=state.clinic.name,
        doctor_name=state.doctor.name if state.doctor is not None else "tu médico",
        when=local_when(offer.start, zone) if offer is not None else "",
        until=local_until(offer.expires_at, zone, state.now) if offer is not None else "",
        live=offer is not None,
        waiting=state.waiting,
        notice=notice if notice in pages.OFFER_NOTICES else None,
        token=token,
    )


def _form_start(event: Mapping[str, Any]) -> str | None:
    body = event.get("body") or ""
    if not isinstance(body, str):
        return None
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input: no form
            return None
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        fields = urllib.parse.parse_qs(body, max_num_fields=5, strict_parsing=False)
    except ValueError:
        return None
    values = fields.get("start") or []
    return values[0] if len(values) == 1 else None


def _route(event: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(method, token, action) of a `/p/...` path; action None for the page itself."""
    method = str(event.get("httpMethod", "")).upper()
    path = str(event.get("path", ""))
    # The stage prefix (`/prod`) is not in a REST proxy event's `path`; locally there is none.
    _, _, rest = path.partition("/p/")
    parts = rest.split("/")
    # Exactly `/p/<token>` or `/p/<token>/<action>`: with a trailing slash the page's relative
    # form actions would resolve under the token, so that is no page of ours.
    if len(parts) == 1 and parts[0]:
        return method, parts[0], None
    if len(parts) == 2 and all(parts):
        return method, parts[0], parts[1]
    return method, "", None


def respond(app_source: AppSource, event: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to one page request (never raises for anything a client can send)."""
    method, token, action = _route(event)
    fields: dict[str, Any] = {
        "route": "/p/{token}" if action is None else "/p/{token}/{action}",
        "method": method if method.isalpha() else "other",
        "link_id": link_id(token) if token else None,
    }
    response = _answer(app_source, event, method, token, action, fields)
    fields["status"] = response["statusCode"]
    level = logger.warning if response["statusCode"] >= 500 else logger.info
    level("page request handled", extra=fields)
    metrics.add_metric(name="PatientPageRequests", unit=MetricUnit.Count, value=1)
    return response


def _answer(
    app_source: AppSource,
    event: Mapping[str, Any],
    method: str,
    token: str,
    action: str | None,
    fields: dict[str, Any],
) -> dict[str, Any]:
    if not token or (action is not None and action not in ACTIONS + OFFER_ACTIONS):
        return _html(404, pages.render_not_found())
    allowed = "GET" if action is None else "POST"
    if method != allowed and not (action is None and method == "HEAD"):
        return _html(405, pages.render_not_found(), {"Allow": allowed})
    use_cases = app_source().pages
    try:
        if use_cases.is_offer(token):
            return _offer_answer(use_cases, event, token, action, fields)
        if action in OFFER_ACTIONS:
            return _html(404, pages.render_not_found())
        return _visit_answer(use_cases, event, token, action, fields)
    except InvalidLink:
        return _html(404, pages.render_not_found())
    except PageGone as gone:
        name = gone.clinic.name if gone.clinic is not None else None
        return _html(410, pages.render_expired(name))
    except OfferGone as gone:
        name = gone.clinic.name if gone.clinic is not None else None
        return _html(410, pages.render_offer_gone(name, waiting=gone.waiting))
    except TemporarilyUnavailable as e:
        fields["error_code"] = e.code
        retry = str(max(0, int(e.retry_after_seconds)))
        return _html(503, pages.render_error(), {"Retry-After": retry})
    except Exception as e:
        # Never a stack trace to the patient; the log names the failure's type and origin,
        # never its message (it could quote a token or a form).
        fields.update(failure_fields(e))
        logger.error("page request failed", extra=failure_fields(e))
        return _html(500, pages.render_error())


def _notice(event: Mapping[str, Any]) -> str | None:
    query = event.get("queryStringParameters") or {}
    notice = query.get("aviso") if isinstance(query, Mapping) else None
    return notice if isinstance(notice, str) else None


def _see_other(token: str, notice: str | None) -> dict[str, Any]:
    # Relative: `/p/<token>/confirmar` → `/p/<token>`, under any stage prefix.
    query = f"?aviso={urllib.parse.quote(notice)}" if notice else ""
    return _html(303, "", {"Location": f"../{token}{query}"})


def _visit_answer(
    use_cases: PatientPages,
    event: Mapping[str, Any],
    token: str,
    action: str | None,
    fields: dict[str, Any],
) -> dict[str, Any]:
    if action is None:
        state = use_cases.open(token)
        fields["appointment_id"] = state.appointment.appointment_id
        return _html(200, pages.render_appointment(view_of(state, token, _notice(event))))
    shown = token
    if action == "confirmar":
        notice = use_cases.confirm(token)
    elif action == "cancelar":
        notice = use_cases.cancel(token)
    else:
        # A moved visit has a new link (it expires at the new start): back to that one.
        notice, shown = use_cases.reschedule(token, _form_start(event))
    fields["notice"] = notice
    return _see_other(shown, notice)


def _offer_answer(
    use_cases: PatientPages,
    event: Mapping[str, Any],
    token: str,
    action: str | None,
    fields: dict[str, Any],
) -> dict[str, Any]:
    if action is None:
        state = use_cases.open_offer(token)
        fields["waitlist_id"] = state.entry.waitlist_id
        if state.booked_token is not None:
            # The offer became an appointment: its own page is the one to see.
            return _see_other(state.booked_token, None)
        return _html(200, pages.render_offer(offer_view_of(state, token, _notice(event))))
    if action not in OFFER_ACTIONS:
        return _html(404, pages.render_not_found())
    done = use_cases.accept_offer(token) if action == "aceptar" else use_cases.decline_offer(token)
    fields["notice"] = done.notice
    # Accepted: to the new appointment's page (its link expires when the visit starts).
    return _see_other(done.token, done.notice)


def make_handler(source: AppSource) -> LambdaHandler:
    """The pages' Lambda handler, running on the app `source` returns."""

    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
    )
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return respond(source, event)

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """One API Gateway REST proxy event in, one HTML proxy response out."""
        with _one_at_a_time:
            response: dict[str, Any] = handle(
                event, context if context is not None else LocalContext()
            )
        return response

    return handler


# Built on the first request, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
