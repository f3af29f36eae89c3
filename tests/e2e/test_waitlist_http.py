"""The waitlist end to end: the real `citas serve`, real HTTP, the offer taken on its page.

A cancellation goes through the server's own outbox relay and events consumer, which offers
the freed slot to the oldest waiting entry and prints the offer's message with its link; the
patient declines on the page, the next entry is offered the slot, and that one accepts.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.e2e.conftest import Api, RunningServer

ALL_DAY = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
# Zones no more than 9 hours apart all round the clock: one of them is always between 09:00
# and 18:00.
ZONES = (
    "America/Los_Angeles",
    "America/Lima",
    "Europe/Madrid",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


def _daytime_zone() -> ZoneInfo:
    """A zone where it is day now: quiet hours (21:00-08:00 on the doctor's clock) would hold
    the offer's message until 08:00, whenever the suite happens to run at night in Lima."""
    for name in ZONES:
        if 9 <= datetime.now(ZoneInfo(name)).hour < 18:
            return ZoneInfo(name)
    raise AssertionError(f"none of {ZONES} is between 09:00 and 18:00 now")


def _doctor(api: Api, zone: ZoneInfo) -> str:
    doctor_id = f"e2e-wait-{uuid.uuid4().hex[:10]}"
    body = {
        "name": "Dra. Lista",
        "country": "PE",
        "time_zone": zone.key,
        "slot_minutes": 30,
        "working_hours": ALL_DAY,
        "min_notice_minutes": 0,
        "booking_horizon_days": 365,
        "works_on_holidays": True,
    }
    reply = api.put(f"/doctors/{doctor_id}", json=body)
    assert reply.status_code == 201, reply.text
    return doctor_id


def _phone() -> str:
    return f"+5197{uuid.uuid4().int % 10**7:07d}"


def _offer_link(server: RunningServer, seen: set[str]) -> str:
    """The link of the next offer message the server prints (the consumer is async)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for line in server.stdout_lines():
            if not line.startswith("{") or '"notification"' not in line:
                continue
            note = json.loads(line)
            link = note.get("link")
            if link and "se liberó un horario" in note.get("text", "") and link not in seen:
                seen.add(link)
                return str(link)
        time.sleep(0.1)
    pytest.fail("no offer message on the server's stdout")


def _entry(api: Api, waitlist_id: str) -> dict[str, Any]:
    reply = api.get(f"/waitlist/{waitlist_id}")
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def _wait_for(api: Api, waitlist_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        entry = _entry(api, waitlist_id)
        if entry["status"] == status:
            return entry
        time.sleep(0.1)
    pytest.fail(f"{waitlist_id} never became {status}: {_entry(api, waitlist_id)}")


def test_a_freed_slot_is_offered_declined_offered_again_and_taken_on_the_page(
    server: RunningServer, api: Api
) -> None:
    zone = _daytime_zone()
    doctor_id = _doctor(api, zone)
    day = (datetime.now(zone) + timedelta(days=3)).date()
    start = datetime.combine(day, clock(10, 0), tzinfo=zone).isoformat()
    booked = api.post(
        "/appointments",
        json={
            "doctor_id": doctor_id,
            "patient": {"name": "Ana", "phone": _phone()},
            "start": start,
        },
    )
    assert booked.status_code == 201, booked.text
    joins = []
    for name in ("Luis", "Rosa"):
        body = {
            "doctor_id": doctor_id,
            "patient": {"name": name, "phone": _phone()},
            "from": day.isoformat(),
            "to": (day + timedelta(days=1)).isoformat(),
            "earliest": "09:00",
            "latest": "12:00",
        }
        joined = api.post("/waitlist", json=body)
        assert joined.status_code == 201, joined.text
        assert joined.headers["Location"] == f"/waitlist/{joined.json()['waitlist_id']}"
        joins.append(joined.json()["waitlist_id"])
    first, second = joins

    assert api.delete(f"/appointments/{booked.json()['appointment_id']}").status_code == 200
    offered = _wait_for(api, first, "offered")
    assert offered["offer"]["start"] == start
    assert _entry(api, second)["status"] == "waiting"
    # Held: out of availability, refused to a direct booking.
    slots = api.get(f"/doctors/{doctor_id}/availability", params={"date": day.isoformat()})
    assert start not in [s["start"] for s in slots.json()["slots"]]
    taken = api.post(
        "/appointments",
        json={"doctor_id": doctor_id, "patient": {"name": "X", "phone": _phone()}, "start": start},
    )
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "slot_unavailable")

    seen: set[str] = set()
    link = _offer_link(server, seen)
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "Aceptar" in page.text and "Rechazar" in page.text
    declined = requests.post(f"{link}/rechazar", allow_redirects=False, timeout=10)
    assert declined.status_code == 303
    assert _entry(api, first)["status"] == "waiting"

    # The decline freed the slot; the consumer offers it to the next entry.
    _wait_for(api, second, "offered")
    link = _offer_link(server, seen)
    accepted = requests.post(f"{link}/aceptar", allow_redirects=False, timeout=10)
    assert accepted.status_code == 303, accepted.text
    landing = requests.get(requests.compat.urljoin(f"{link}/aceptar", accepted.headers["Location"]))
    assert landing.status_code == 200
    entry = _entry(api, second)
    assert entry["status"] == "booked"
    appointment = api.get(f"/appointments/{entry['appointment_id']}").json()
    assert (appointment["status"], appointment["start"]) == ("confirmed", start)
    # Accepting again from the same link lands on the same appointment, booking nothing.
    again = requests.post(f"{link}/aceptar", allow_redirects=False, timeout=10)
    assert again.headers["Location"] == accepted.headers["Location"]
    listed = api.get("/waitlist", params={"doctor_id": doctor_id}).json()
    assert [e["waitlist_id"] for e in listed["items"]] == [first, second]
