"""Lists of appointments, one signed page at a time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from domain.appointment import Appointment, require_aware
from domain.commands import ListByCountryStatus, ListDoctorDay
from domain.errors import ValidationError
from domain.use_cases.context import ListResult, Ports, check_limit, signed_page
from domain.use_cases.doctors import DoctorUseCases
from ports.repositories import Cursor, Page, Window


class ListUseCases:
    """A doctor's day, or a country's appointments in one status."""

    def __init__(self, ports: Ports, doctors: DoctorUseCases) -> None:
        self._ports = ports
        self._doctors = doctors

    def list_doctor_day(self, command: ListDoctorDay) -> ListResult[Appointment]:
        """A doctor's appointments of one local date, by start time."""
        check_limit(command.limit)
        doctor = self._doctors.doctor(command.doctor_id)
        start, end = doctor.day_bounds(command.day)
        # The clinic is part of the query a token is signed for: a token one clinic got is
        # never good for another's list, on any backend.
        query = {
            "clinic_id": self._ports.clinic_id,
            "doctor_id": command.doctor_id,
            "date": command.day.isoformat(),
        }
        appointments = self._ports.appointments
        return self._page(
            query,
            command.next_token,
            lambda cursor: appointments.list_by_doctor(
                command.doctor_id, start, end, command.limit, cursor
            ),
        )

    def list_by_country_status(self, command: ListByCountryStatus) -> ListResult[Appointment]:
        """Appointments of a country in a status, optionally within [from, to), by start."""
        check_limit(command.limit)
        self._ports.countries.require(command.country)
        start_from = (
            require_aware(command.start_from, "from") if command.start_from is not None else None
        )
        start_to = require_aware(command.start_to, "to") if command.start_to is not None else None
        if start_from is not None and start_to is not None and start_to < start_from:
            raise ValidationError("to must not be before from", field="to")
        query: dict[str, Any] = {
            "clinic_id": self._ports.clinic_id,
            "country": command.country,
            "status": str(command.status),
            "from": start_from.isoformat() if start_from else None,
            "to": start_to.isoformat() if start_to else None,
        }
        if command.at_risk:
            # Only when set: a token of a list without the filter keeps verifying.
            query["at_risk"] = True
        appointments = self._ports.appointments
        return self._page(
            query,
            command.next_token,
            lambda cursor: appointments.list_by_country_status(
                command.country,
                command.status,
                Window(start_from, start_to),
                command.limit,
                cursor,
                at_risk=command.at_risk,
            ),
        )

    def _page(
        self,
        query: Mapping[str, Any],
        token: str | None,
        fetch: Callable[[Cursor], Page[Appointment]],
    ) -> ListResult[Appointment]:
        return signed_page(self._ports.page_tokens, query, token, fetch)
