from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from domain.commands import RegisterDoctor
from domain.countries import CountryCatalog
from domain.errors import ValidationError
from domain.schedule import Doctor, WorkingHours, cells, local_day_bounds
from tests.unit.conftest import LIMA, SANTIAGO, WED, World, at, booking

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def test_availability_lists_the_free_slots_of_the_day_in_order(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:30")))

    slots = world.clinic.availability("rosa", WED).slots

    starts = [s.start.astimezone(LIMA).strftime("%H:%M") for s in slots]
    assert starts[:3] == ["09:00", "10:00", "10:30"]
    assert starts[-1] == "17:30"
    assert len(starts) == 15
    assert all(s.end - s.start == timedelta(minutes=30) for s in slots)


def test_availability_hides_slots_in_the_past(world: World) -> None:
    world.clock.set(at(WED, "11:00"))

    slots = world.clinic.availability("rosa", WED).slots

    assert slots[0].start == at(WED, "11:30")


def test_availability_hides_slots_covered_by_a_longer_booking(world: World) -> None:
    world.clinic.book(booking(at(WED, "09:00"), minutes=120))

    slots = world.clinic.availability("rosa", WED).slots

    assert slots[0].start == at(WED, "11:00")


def test_availability_of_a_day_off_is_empty(world: World) -> None:
    assert world.clinic.availability("rosa", date(2026, 12, 5)).slots == []


def test_lima_keeps_its_offset_all_year() -> None:
    assert {d.utcoffset() for d in (at(date(2026, 1, 15), "10:00"), at(WED, "10:00"))} == {
        timedelta(hours=-5)
    }


def _santiago(world: World, slot: int = 60) -> str:
    # A year ahead and no notice: these tests are about Santiago's clock changes of 2026.
    world.clinic.register_doctor(
        RegisterDoctor(
            "scl",
            "Dra. Vera",
            "CL",
            ALL_DAY,
            None,
            slot,
            min_notice_minutes=0,
            booking_horizon_days=365,
        )
    )
    world.clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    return "scl"


def test_santiago_has_a_25_hour_day_when_dst_ends_and_the_repeated_hour_is_offered_once(
    world: World,
) -> None:
    doctor = _santiago(world)
    start, end = local_day_bounds(date(2026, 4, 4), SANTIAGO)
    assert end - start == timedelta(hours=25)

    slots = world.clinic.availability(doctor, date(2026, 4, 4)).slots

    # 23:00-24:00 at -03 would end at 23:00 on the wall clock: a span across the change
    # is never offered. The second 23:00 (-04) is a normal hour.
    assert len(slots) == 24
    assert slots[-1].start.astimezone(SANTIAGO).isoformat() == "2026-04-04T23:00:00-04:00"


def test_santiago_skips_the_missing_midnight_hour_when_dst_starts(world: World) -> None:
    doctor = _santiago(world)

    slots = world.clinic.availability(doctor, date(2026, 9, 6)).slots

    assert slots[0].start.astimezone(SANTIAGO).isoformat() == "2026-09-06T01:00:00-03:00"
    assert len(slots) == 23


def test_the_same_wall_time_has_different_offsets_across_santiagos_change(world: World) -> None:
    doctor = _santiago(world)
    before = world.clinic.availability(doctor, date(2026, 9, 5)).slots
    after = world.clinic.availability(doctor, date(2026, 9, 7)).slots

    ten_before = next(s for s in before if s.start.astimezone(SANTIAGO).hour == 10)
    ten_after = next(s for s in after if s.start.astimezone(SANTIAGO).hour == 10)

    assert ten_before.start.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-4)
    assert ten_after.start.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-3)
    for slot in (ten_before, ten_after):
        world.clinic.book(booking(slot.start, doctor=doctor, minutes=60))


def test_a_start_written_in_the_missing_hour_means_the_instant_it_names(world: World) -> None:
    doctor = _santiago(world)
    # 00:00-04:00 on 2026-09-06 never shows on Santiago's clocks, but it is a real instant:
    # the one Santiago calls 01:00-03:00.
    written = datetime(2026, 9, 6, 0, 0, tzinfo=timezone(timedelta(hours=-4)))

    appointment = world.clinic.book(booking(written, doctor=doctor, minutes=60))

    assert appointment.start.astimezone(SANTIAGO).isoformat() == "2026-09-06T01:00:00-03:00"


def test_cells_cover_exactly_the_span_on_a_five_minute_grid() -> None:
    start = datetime(2026, 12, 2, 14, 30, tzinfo=UTC)

    assert len(cells(start, start + timedelta(minutes=30))) == 6
    assert set(cells(start, start + timedelta(minutes=30))).isdisjoint(
        cells(start + timedelta(minutes=30), start + timedelta(minutes=45))
    )
    assert set(cells(start, start + timedelta(minutes=30))) & set(
        cells(start + timedelta(minutes=25), start + timedelta(minutes=45))
    )


@pytest.mark.parametrize(
    "hours",
    [
        {"mon": [["09:00", "08:00"]]},
        {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]},
        {"mon": [["9:00", "12:00"]]},
        {"mon": [["09:00", "24:30"]]},
        {"mon": [["09:07", "12:00"]]},
        {"monday": [["09:00", "12:00"]]},
        {"mon": [["09:00"]]},
        {"mon": "09:00-12:00"},
    ],
)
def test_malformed_working_hours_are_a_validation_error(hours: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WorkingHours.parse(hours)  # type: ignore[arg-type]


def test_working_hours_round_trip_in_calendar_order() -> None:
    raw = {"fri": [["14:00", "18:00"], ["09:00", "13:00"]], "mon": [["09:00", "24:00"]]}

    assert WorkingHours.parse(raw).to_dict() == {
        "mon": [["09:00", "24:00"]],
        "fri": [["09:00", "13:00"], ["14:00", "18:00"]],
    }


def test_the_time_zone_defaults_from_the_country(world: World) -> None:
    doctor, created = world.clinic.register_doctor(RegisterDoctor("d1", "Dr. Uno", "CL", ALL_DAY))
    assert created
    assert doctor.time_zone == "America/Santiago"


def test_registering_again_replaces_the_doctor(world: World) -> None:
    _, created = world.clinic.register_doctor(
        RegisterDoctor("rosa", "Dra. Rosa Q.", "PE", ALL_DAY, slot_minutes=15)
    )
    assert not created
    assert world.clinic.doctor("rosa").slot_minutes == 15


@pytest.mark.parametrize(
    "command",
    [
        RegisterDoctor("d1", "Dr. Uno", "AR", ALL_DAY),
        RegisterDoctor("d1", "Dr. Uno", "PE", ALL_DAY, time_zone="Mars/Olympus"),
        RegisterDoctor("d1", "Dr. Uno", "PE", ALL_DAY, slot_minutes=25),
        RegisterDoctor("d 1", "Dr. Uno", "PE", ALL_DAY),
        RegisterDoctor("d1", "", "PE", ALL_DAY),
    ],
)
def test_an_invalid_doctor_is_a_validation_error(world: World, command: RegisterDoctor) -> None:
    with pytest.raises(ValidationError):
        world.clinic.register_doctor(command)


def test_adding_a_country_is_configuration_only(world: World) -> None:
    catalog = CountryCatalog.from_mapping(
        {"PE": "America/Lima", "CL": "America/Santiago", "CO": "America/Bogota"}
    )
    assert catalog.default_zone("CO") == "America/Bogota"
    with pytest.raises(ValueError):
        CountryCatalog.from_mapping({"peru": "America/Lima"})


def test_a_doctor_survives_its_stored_form(world: World) -> None:
    doctor = world.clinic.doctor("rosa")
    assert Doctor.from_snapshot(doctor.snapshot()) == doctor
    assert doctor.snapshot()["working_hours"] == doctor.working_hours.to_dict()
