"""Published event payloads are their own schema, not whatever the stored form holds."""

from __future__ import annotations

from typing import Any

import pytest
from attrs import evolve

from domain.appointment import Appointment
from domain.events import AppointmentRequested
from tests.unit.conftest import WED, World, at, booking


def _requested(world: World) -> AppointmentRequested:
    world.clinic.book(evolve(booking(at(WED, "10:00")), notes="primera consulta"))
    (event,) = [e for e in world.store.outbox.values() if isinstance(e, AppointmentRequested)]
    return event


def test_the_requested_payload_is_version_1_of_the_contract(world: World) -> None:
    event = _requested(world)
    assert set(event.data) == {
        "appointment_id",
        "doctor_id",
        "country",
        "time_zone",
        "patient",
        "start",
        "end",
        "status",
        "version",
        "created_at",
        "updated_at",
        "notes",
        "scheduled_at",
    }
    assert set(event.data["patient"]) == {"name", "phone"}
    assert event.data["status"] == "requested"
    assert event.data["version"] == 1


def test_a_field_added_to_storage_does_not_reach_the_published_event(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = Appointment.snapshot

    def with_more(self: Appointment) -> dict[str, Any]:
        out = stored(self)
        out["internal_flag"] = True
        out["patient"] = {**out["patient"], "internal_note": "x"}
        return out

    monkeypatch.setattr(Appointment, "snapshot", with_more)
    event = _requested(world)
    assert "internal_flag" not in event.data
    assert "internal_note" not in event.data["patient"]


def test_an_appointment_is_rebuilt_from_its_published_events(world: World) -> None:
    appointment = world.clinic.book(booking(at(WED, "11:00")))
    history = [
        e for e in world.store.outbox.values() if e.appointment_id == appointment.appointment_id
    ]
    assert Appointment.replay(history) == world.clinic.get(appointment.appointment_id)
