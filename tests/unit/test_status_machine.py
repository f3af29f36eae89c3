from __future__ import annotations

from datetime import timedelta

import pytest

from domain.appointment import TRANSITIONS, Status
from domain.commands import CancelAppointment, ChangeStatus
from domain.errors import InvalidTransition, VersionConflict
from tests.unit.conftest import WED, World, at, booking


def _book(world: World) -> str:
    return world.clinic.book(booking(at(WED, "09:30"))).appointment_id


def _change(world: World, appointment_id: str, status: Status, **kw: object) -> object:
    return world.clinic.change_status(ChangeStatus(appointment_id, status, **kw))  # type: ignore[arg-type]


def test_the_transition_table_is_the_contracts() -> None:
    assert {
        Status.REQUESTED: {Status.CONFIRMED, Status.CANCELLED},
        Status.CONFIRMED: {Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW},
        Status.CANCELLED: set(),
        Status.COMPLETED: set(),
        Status.NO_SHOW: set(),
    } == TRANSITIONS


def test_confirming_a_requested_appointment_bumps_the_version(world: World) -> None:
    appointment_id = _book(world)

    confirmed = world.clinic.change_status(ChangeStatus(appointment_id, Status.CONFIRMED))

    assert confirmed.status is Status.CONFIRMED
    assert confirmed.version == 2
    assert world.event_types(appointment_id) == ["AppointmentRequested", "AppointmentConfirmed"]


def test_a_requested_appointment_cannot_be_completed(world: World) -> None:
    appointment_id = _book(world)
    world.clock.set(at(WED, "10:00"))

    with pytest.raises(InvalidTransition) as raised:
        _change(world, appointment_id, Status.COMPLETED)
    assert raised.value.code == "invalid_transition"


def test_completion_needs_the_start_to_have_passed(world: World) -> None:
    appointment_id = _book(world)
    _change(world, appointment_id, Status.CONFIRMED)

    with pytest.raises(InvalidTransition):
        _change(world, appointment_id, Status.COMPLETED)

    world.clock.set(at(WED, "09:30"))
    completed = world.clinic.change_status(ChangeStatus(appointment_id, Status.COMPLETED))
    assert completed.status is Status.COMPLETED


def test_a_no_show_needs_the_start_to_have_passed(world: World) -> None:
    appointment_id = _book(world)
    _change(world, appointment_id, Status.CONFIRMED)
    with pytest.raises(InvalidTransition):
        _change(world, appointment_id, Status.NO_SHOW)

    world.clock.set(at(WED, "09:45"))
    marked = world.clinic.change_status(ChangeStatus(appointment_id, Status.NO_SHOW))
    assert marked.status is Status.NO_SHOW
    assert world.event_types(appointment_id)[-1] == "AppointmentMarkedNoShow"


@pytest.mark.parametrize("final", [Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW])
@pytest.mark.parametrize("target", list(Status))
def test_final_states_stay_final(world: World, final: Status, target: Status) -> None:
    appointment_id = _book(world)
    if final is not Status.CANCELLED:
        _change(world, appointment_id, Status.CONFIRMED)
        world.clock.set(at(WED, "10:00"))
    _change(world, appointment_id, final)

    with pytest.raises(InvalidTransition):
        _change(world, appointment_id, target)
    assert world.clinic.get(appointment_id).status is final


def test_confirming_twice_is_an_invalid_transition(world: World) -> None:
    appointment_id = _book(world)
    _change(world, appointment_id, Status.CONFIRMED)

    with pytest.raises(InvalidTransition):
        _change(world, appointment_id, Status.CONFIRMED)


def test_a_matching_expected_version_applies_the_change(world: World) -> None:
    appointment_id = _book(world)

    confirmed = world.clinic.change_status(
        ChangeStatus(appointment_id, Status.CONFIRMED, expected_version=1)
    )
    assert confirmed.version == 2


def test_a_stale_expected_version_is_a_version_conflict_and_changes_nothing(world: World) -> None:
    appointment_id = _book(world)
    _change(world, appointment_id, Status.CONFIRMED)

    with pytest.raises(VersionConflict) as raised:
        world.clinic.change_status(
            ChangeStatus(appointment_id, Status.CANCELLED, expected_version=1)
        )
    assert raised.value.code == "version_conflict"
    assert raised.value.details == {"expected": 1, "actual": 2}
    assert world.clinic.get(appointment_id).status is Status.CONFIRMED


def test_cancelling_frees_the_time_for_another_patient(world: World) -> None:
    appointment_id = _book(world)

    cancelled = world.clinic.cancel(CancelAppointment(appointment_id, reason="viaje"))

    assert cancelled.status is Status.CANCELLED
    again = world.clinic.book(booking(at(WED, "09:30"), who=2))
    assert again.status is Status.REQUESTED
    (event,) = [e for e in world.store.outbox.values() if e.type == "AppointmentCancelled"]
    assert event.data["reason"] == "viaje"


def test_cancelling_a_cancelled_appointment_returns_it_unchanged(world: World) -> None:
    appointment_id = _book(world)
    first = world.clinic.cancel(CancelAppointment(appointment_id))

    second = world.clinic.cancel(CancelAppointment(appointment_id))

    assert second == first
    assert world.event_types(appointment_id).count("AppointmentCancelled") == 1


def test_cancelling_a_completed_appointment_is_an_invalid_transition(world: World) -> None:
    appointment_id = _book(world)
    _change(world, appointment_id, Status.CONFIRMED)
    world.clock.set(at(WED, "09:30") + timedelta(minutes=40))
    _change(world, appointment_id, Status.COMPLETED)

    with pytest.raises(InvalidTransition):
        world.clinic.cancel(CancelAppointment(appointment_id))


def test_a_completed_appointment_frees_its_cells(world: World) -> None:
    appointment_id = _book(world)
    _change(world, appointment_id, Status.CONFIRMED)
    world.clock.set(at(WED, "10:00"))
    _change(world, appointment_id, Status.COMPLETED)

    assert world.store.cells == {}
