"""Hypothesis feeds any text (all of Unicode, lone surrogates, controls, newlines) into every
string field, header and query parameter of every route: the answer is never a 5xx, always
valid UTF-8 JSON, and whatever was accepted can be read back and listed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.system import FixedClock
from entrypoints.bootstrap import build_app
from entrypoints.config import Settings
from tests.unit.apigw import Reply
from tests.unit.http_world import (
    ANA,
    LIMA_DOCTOR,
    MON,
    NOW,
    SLOT,
    Api,
    booking,
    handler,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

# Any code point at all, surrogates included, with the troublemakers made likely.
ANY_CHAR = st.characters(exclude_categories=())
TRICKY = st.sampled_from(
    ["\n", "\r", "\x00", "\ud800", "\udfff", "\u2028", "\uff11", "\u0663", " ", "%"]
)
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.lists(st.one_of(ANY_CHAR, TRICKY), max_size=12).map("".join),
)
# A valid value with something glued on: a loose pattern's favourite.
GLUED = st.builds(
    lambda valid, extra, before: extra + valid if before else valid + extra,
    st.sampled_from(["dr-lima", "+51987654321", MON, f"{MON}T09:00:00-05:00", "PE", "5", "3"]),
    st.lists(TRICKY, min_size=1, max_size=3).map("".join),
    st.booleans(),
)
VALUE = st.one_of(TEXT, GLUED)

Request = tuple[str, str, dict[str, Any]]
APPOINTMENT = "{appointment}"  # filled with the id of the appointment the world holds


def _doctor(**changes: Any) -> dict[str, Any]:
    return {**LIMA_DOCTOR, **changes}


def _block(**changes: Any) -> dict[str, Any]:
    return {"start": f"{MON}T10:00:00-05:00", "end": f"{MON}T12:00:00-05:00", **changes}


def _hours(value: str) -> dict[str, Any]:
    return {"mon": [["09:00", value]]}


# Every place a client can put a string, as (method, path, request parts) for a value `v`.
SLOTS: dict[str, Callable[[str], Request]] = {
    "doctor id (path)": lambda v: ("PUT", f"/doctors/{v}", {"body": _doctor()}),
    "doctor name": lambda v: ("PUT", "/doctors/dr-nuevo", {"body": _doctor(name=v)}),
    "country": lambda v: ("PUT", "/doctors/dr-nuevo", {"body": _doctor(country=v)}),
    "time zone": lambda v: ("PUT", "/doctors/dr-nuevo", {"body": _doctor(time_zone=v)}),
    "working hours": lambda v: (
        "PUT",
        "/doctors/dr-nuevo",
        {"body": _doctor(working_hours=_hours(v))},
    ),
    "weekday": lambda v: ("PUT", "/doctors/dr-nuevo", {"body": _doctor(working_hours={v: []})}),
    "get doctor": lambda v: ("GET", f"/doctors/{v}", {}),
    "time-off id (path)": lambda v: ("PUT", f"/doctors/dr-lima/time-off/{v}", {"body": _block()}),
    "time-off start": lambda v: (
        "PUT",
        "/doctors/dr-lima/time-off/congreso",
        {"body": _block(start=v)},
    ),
    "time-off reason": lambda v: (
        "PUT",
        "/doctors/dr-lima/time-off/congreso",
        {"body": _block(reason=v)},
    ),
    "time-off list from": lambda v: (
        "GET",
        "/doctors/dr-lima/time-off",
        {"query": {"from": v, "to": MON}},
    ),
    "remove time off": lambda v: ("DELETE", f"/doctors/dr-lima/time-off/{v}", {}),
    "holidays country": lambda v: ("GET", f"/holidays/{v}", {}),
    "holidays year": lambda v: ("GET", "/holidays/PE", {"query": {"year": v}}),
    "availability date": lambda v: (
        "GET",
        "/doctors/dr-lima/availability",
        {"query": {"date": v}},
    ),
    "book doctor": lambda v: ("POST", "/appointments", {"body": booking(doctor_id=v)}),
    "patient name": lambda v: (
        "POST",
        "/appointments",
        {"body": booking(patient={**ANA, "name": v})},
    ),
    "patient phone": lambda v: (
        "POST",
        "/appointments",
        {"body": booking(patient={**ANA, "phone": v})},
    ),
    "document id": lambda v: (
        "POST",
        "/appointments",
        {"body": booking(patient={**ANA, "document_id": v})},
    ),
    "start": lambda v: ("POST", "/appointments", {"body": booking(start=v)}),
    "notes": lambda v: ("POST", "/appointments", {"body": booking(notes=v)}),
    "idempotency key": lambda v: (
        "POST",
        "/appointments",
        {"body": booking(), "headers": {"Idempotency-Key": v}},
    ),
    "async patient name": lambda v: (
        "POST",
        "/appointment-requests",
        {"body": booking(patient={**ANA, "name": v})},
    ),
    "request id": lambda v: ("GET", f"/appointment-requests/{v}", {}),
    "appointment id": lambda v: ("GET", f"/appointments/{v}", {}),
    "list doctor": lambda v: ("GET", "/appointments", {"query": {"doctor_id": v, "date": MON}}),
    "list date": lambda v: ("GET", "/appointments", {"query": {"doctor_id": "dr-lima", "date": v}}),
    "list limit": lambda v: (
        "GET",
        "/appointments",
        {"query": {"doctor_id": "dr-lima", "date": MON, "limit": v}},
    ),
    "next token": lambda v: (
        "GET",
        "/appointments",
        {"query": {"doctor_id": "dr-lima", "date": MON, "next_token": v}},
    ),
    "list country": lambda v: (
        "GET",
        "/appointments",
        {"query": {"country": v, "status": "requested"}},
    ),
    "list status": lambda v: ("GET", "/appointments", {"query": {"country": "PE", "status": v}}),
    "list from": lambda v: (
        "GET",
        "/appointments",
        {"query": {"country": "PE", "status": "requested", "from": v}},
    ),
    "query name": lambda v: ("GET", "/appointments", {"query": {v: "x"}}),
    "reschedule start": lambda v: ("PATCH", f"/appointments/{APPOINTMENT}", {"body": {"start": v}}),
    "status": lambda v: ("POST", f"/appointments/{APPOINTMENT}/status", {"body": {"status": v}}),
    "reason": lambda v: (
        "POST",
        f"/appointments/{APPOINTMENT}/status",
        {"body": {"status": "confirmed", "reason": v}},
    ),
    "if-match": lambda v: (
        "DELETE",
        f"/appointments/{APPOINTMENT}",
        {"headers": {"If-Match": v}},
    ),
    "body key": lambda v: ("POST", "/appointments", {"body": {**booking(), v: 1}}),
}


@contextmanager
def _world() -> Iterator[tuple[Api, str]]:
    """A fresh memory backend with the Lima doctor and one appointment."""
    SLOT.app = build_app(Settings(), clock=FixedClock(NOW))
    try:
        api = Api(handler)
        assert api.put("/doctors/dr-lima", LIMA_DOCTOR).status == 201
        booked = api.post(
            "/appointments",
            booking(f"{MON}T14:00:00-05:00", patient={**ANA, "phone": "+51900000001"}),
        )
        assert booked.status == 201
        yield api, str(booked.json["appointment_id"])
    finally:
        SLOT.app = None


def _send(api: Api, method: str, path: str, parts: dict[str, Any]) -> Reply:
    # A client's JSON spells a lone surrogate as the escape `\ud800`: send it that way.
    body = parts.get("body")
    return api.call(
        method,
        path,
        body=json.dumps(body, ensure_ascii=True) if body is not None else None,
        headers=parts.get("headers"),
        query=parts.get("query"),
    )


def _readable(api: Api, reply: Reply, appointment: str) -> None:
    """Whatever the request created or changed reads back and lists, as valid JSON."""
    lists = [
        api.get("/appointments", query={"doctor_id": "dr-lima", "date": MON}),
        api.get("/appointments", query={"country": "PE", "status": "requested"}),
        api.get(f"/appointments/{appointment}"),
    ]
    created = reply.json.get("appointment_id") if isinstance(reply.json, dict) else None
    if created:
        lists.append(api.get(f"/appointments/{created}"))
        got = lists[-1].json
        assert got == reply.json, "what was accepted is what is read back"
    if isinstance(reply.json, dict) and "request_id" in reply.json:
        lists.append(api.get(f"/appointment-requests/{reply.json['request_id']}"))
    if isinstance(reply.json, dict) and "doctor_id" in reply.json and "working_hours" in reply.json:
        doctor = api.get(f"/doctors/{reply.json['doctor_id']}")
        assert doctor.json == reply.json
        lists.append(doctor)
    for listed in lists:
        assert listed.status == 200, listed.text
        listed.text.encode("utf-8")


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(slot=st.sampled_from(sorted(SLOTS)), value=VALUE)
def test_any_text_in_any_field_is_never_a_server_error(slot: str, value: str) -> None:
    with _world() as (api, appointment):
        method, path, parts = SLOTS[slot](value)
        path = path.replace(APPOINTMENT, appointment)
        reply = _send(api, method, path, parts)
        assert reply.status < 500, (slot, value, reply.text)
        reply.text.encode("utf-8")  # never a body that cannot be sent
        if reply.status >= 400:
            assert set(reply.json) == {"error"}
        else:
            _readable(api, reply, appointment)
