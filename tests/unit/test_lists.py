from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from domain.appointment import Status
from domain.commands import ChangeStatus, ListByCountryStatus, ListDoctorDay
from domain.errors import NotFound, ValidationError
from tests.unit.conftest import THU, WED, World, at, booking


def _book_day(world: World, count: int) -> list[str]:
    return [
        world.clinic.book(
            booking(at(WED, "09:00") + timedelta(minutes=30 * i), who=i)
        ).appointment_id
        for i in range(count)
    ]


def _pages(world: World, command: ListDoctorDay) -> list[list[str]]:
    pages = []
    token = None
    while True:
        result = world.clinic.list_doctor_day(
            ListDoctorDay(command.doctor_id, command.day, command.limit, token)
        )
        pages.append([a.appointment_id for a in result.items])
        token = result.next_token
        if token is None:
            return pages


def test_the_doctor_day_list_is_ordered_by_start_and_covers_only_that_day(world: World) -> None:
    ids = _book_day(world, 4)
    world.clinic.book(booking(at(THU, "09:00"), who=9))

    result = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED))

    assert [a.appointment_id for a in result.items] == ids
    assert result.next_token is None


def test_the_doctor_day_list_includes_cancelled_appointments(world: World) -> None:
    (appointment_id,) = _book_day(world, 1)
    world.clinic.change_status(ChangeStatus(appointment_id, Status.CANCELLED))

    result = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED))
    assert [a.status for a in result.items] == [Status.CANCELLED]


def test_pages_chain_without_gaps_or_repeats(world: World) -> None:
    ids = _book_day(world, 5)

    pages = _pages(world, ListDoctorDay("rosa", WED, limit=2))

    assert pages == [ids[0:2], ids[2:4], ids[4:5]]


def test_a_full_last_page_has_no_next_token(world: World) -> None:
    ids = _book_day(world, 4)

    pages = _pages(world, ListDoctorDay("rosa", WED, limit=2))

    assert pages == [ids[0:2], ids[2:4]]


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_a_limit_outside_1_to_100_is_a_validation_error(world: World, limit: int) -> None:
    with pytest.raises(ValidationError):
        world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=limit))


@pytest.mark.parametrize("token", ["garbage", "e30", "!!!", base64.b64encode(b"[1,2]").decode()])
def test_a_malformed_token_is_a_validation_error(world: World, token: str) -> None:
    _book_day(world, 3)
    with pytest.raises(ValidationError):
        world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=1, next_token=token))


def test_a_token_from_another_query_is_a_validation_error(world: World) -> None:
    _book_day(world, 3)
    token = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=1)).next_token
    assert token is not None

    with pytest.raises(ValidationError):
        world.clinic.list_doctor_day(ListDoctorDay("rosa", THU, limit=1, next_token=token))


def test_a_tampered_cursor_is_a_validation_error(world: World) -> None:
    _book_day(world, 3)
    token = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=1)).next_token
    assert token is not None
    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["c"] = {"start": "not a time", "id": 5}
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    forged += "." + mac

    with pytest.raises(ValidationError):
        world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=1, next_token=forged))


def test_listing_an_unknown_doctor_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.clinic.list_doctor_day(ListDoctorDay("nobody", WED))


def test_the_country_status_list_filters_by_country_status_and_time(world: World) -> None:
    lima = _book_day(world, 3)
    santiago = world.clinic.book(
        booking(
            at(WED, "09:00").astimezone(world.clinic.doctor("matias").zone), who=20, doctor="matias"
        )
    )
    world.clinic.change_status(ChangeStatus(lima[0], Status.CONFIRMED))

    requested = world.clinic.list_by_country_status(ListByCountryStatus("PE", Status.REQUESTED))
    confirmed = world.clinic.list_by_country_status(ListByCountryStatus("PE", Status.CONFIRMED))
    chile = world.clinic.list_by_country_status(ListByCountryStatus("CL", Status.REQUESTED))
    window = world.clinic.list_by_country_status(
        ListByCountryStatus(
            "PE", Status.REQUESTED, start_from=at(WED, "09:30"), start_to=at(WED, "10:00")
        )
    )

    assert [a.appointment_id for a in requested.items] == lima[1:]
    assert [a.appointment_id for a in confirmed.items] == lima[:1]
    assert [a.appointment_id for a in chile.items] == [santiago.appointment_id]
    assert [a.appointment_id for a in window.items] == [lima[1]]


def test_the_country_status_list_pages(world: World) -> None:
    ids = _book_day(world, 5)
    seen = []
    token = None
    while True:
        page = world.clinic.list_by_country_status(
            ListByCountryStatus("PE", Status.REQUESTED, limit=2, next_token=token)
        )
        seen.extend(a.appointment_id for a in page.items)
        token = page.next_token
        if token is None:
            break
    assert seen == ids


def test_an_unserved_country_is_a_validation_error(world: World) -> None:
    with pytest.raises(ValidationError):
        world.clinic.list_by_country_status(ListByCountryStatus("AR", Status.REQUESTED))


def test_to_before_from_is_a_validation_error(world: World) -> None:
    with pytest.raises(ValidationError):
        world.clinic.list_by_country_status(
            ListByCountryStatus("PE", Status.REQUESTED, at(THU, "09:00"), at(WED, "09:00"))
        )
