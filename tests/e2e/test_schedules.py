"""Schedules over real HTTP against `citas serve`: rules, time off, national holidays.

Dates are relative to the real now (the server's system clock), so each test picks days that
are ordinary for what it checks: holidays are either the point or worked.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .conftest import Api

LIMA = ZoneInfo("America/Lima")
EVERY_DAY = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def doctor(api: Api, **rules: Any) -> str:
    doctor_id = f"e2e-rules-{uuid.uuid4().hex[:10]}"
    body = {"name": "Dra. Reglas", "country": "PE", "working_hours": EVERY_DAY, **rules}
    reply = api.put(f"/doctors/{doctor_id}", json=body)
    assert reply.status_code == 201, reply.text
    return doctor_id


def day(days_ahead: int) -> date:
    return (datetime.now(LIMA) + timedelta(days=days_ahead)).date()


def at(when: date, hhmm: str) -> str:
    return f"{when.isoformat()}T{hhmm}:00-05:00"


def book(api: Api, doctor_id: str, start: str) -> Any:
    patient = {"name": "Ana Pérez", "phone": f"+5198{uuid.uuid4().int % 10**7:07d}"}
    return api.post(
        "/appointments", json={"doctor_id": doctor_id, "patient": patient, "start": start}
    )


def test_time_off_refuses_bookings_until_it_is_removed(api: Api) -> None:
    doctor_id = doctor(api, works_on_holidays=True)
    when = day(5)
    path = f"/doctors/{doctor_id}/time-off/congreso"
    block = {"start": at(when, "08:00"), "end": at(when, "12:00"), "reason": "congreso médico"}
    assert api.put(path, json=block).status_code == 201
    listed = api.get(f"/doctors/{doctor_id}/time-off", params={"from": str(when), "to": str(when)})
    assert [b["time_off_id"] for b in listed.json()["items"]] == ["congreso"]

    inside = book(api, doctor_id, at(when, "10:00"))
    assert (inside.status_code, inside.json()["error"]["code"]) == (409, "doctor_unavailable")
    assert "congreso médico" not in inside.text
    free = api.get(f"/doctors/{doctor_id}/availability", params={"date": str(when)}).json()
    assert free["slots"][0]["start"] == at(when, "12:00")

    booked = book(api, doctor_id, at(when, "12:00")).json()
    over = api.put(path, json={**block, "end": at(when, "13:00")})
    assert (over.status_code, over.json()["error"]["code"]) == (409, "time_off_conflict")
    assert over.json()["error"]["details"]["appointment_ids"] == [booked["appointment_id"]]

    assert api.delete(path).status_code == 200
    assert book(api, doctor_id, at(when, "10:00")).status_code == 201


def test_buffer_notice_and_horizon_over_http(api: Api) -> None:
    doctor_id = doctor(
        api,
        buffer_minutes=30,
        min_notice_minutes=2 * 24 * 60,
        booking_horizon_days=10,
        works_on_holidays=True,
    )
    assert book(api, doctor_id, at(day(1), "10:00")).json()["error"]["code"] == "too_soon"
    assert book(api, doctor_id, at(day(12), "10:00")).json()["error"]["code"] == "too_far"
    when = day(5)
    assert book(api, doctor_id, at(when, "10:00")).status_code == 201
    next_to_it = book(api, doctor_id, at(when, "10:30"))
    assert (next_to_it.status_code, next_to_it.json()["error"]["code"]) == (409, "slot_unavailable")
    starts = [
        s["start"]
        for s in api.get(f"/doctors/{doctor_id}/availability", params={"date": str(when)}).json()[
            "slots"
        ]
    ]
    assert at(when, "09:00") in starts and at(when, "11:00") in starts
    assert at(when, "09:30") not in starts and at(when, "10:30") not in starts


def test_a_national_holiday_is_listed_and_not_bookable(api: Api) -> None:
    year = day(0).year + 1
    holidays = api.get("/holidays/PE", params={"year": str(year)}).json()
    assert holidays["country"] == "PE" and holidays["year"] == year
    fiestas = {h["date"]: h["name"] for h in holidays["holidays"]}
    assert fiestas[f"{year}-07-28"] == "Día de la Independencia"
    doctor_id = doctor(api, booking_horizon_days=365)
    # Within a year ahead: this year's or next year's Navidad, whichever is still to come.
    navidad = date(day(0).year, 12, 25)
    if navidad <= day(1):
        navidad = date(year, 12, 25)
    refused = book(api, doctor_id, at(navidad, "10:00"))
    assert refused.status_code == 422
    assert refused.json()["error"]["details"]["holiday"] == "Navidad del Señor"
    assert api.get("/holidays/AR").status_code == 400
