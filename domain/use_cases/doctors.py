"""Doctors: registering a profile and schedule, looking one up, a day's free slots."""

from __future__ import annotations

from datetime import date, timedelta

from attrs import frozen

from domain.commands import RegisterDoctor
from domain.errors import NotFound, TimeZoneConflict, ZoneChanged
from domain.pagination import MAX_PAGE
from domain.schedule import (
    LATEST_INSTANT,
    MAX_DURATION_MINUTES,
    Doctor,
    Slot,
    WorkingHours,
    free_slots,
)
from domain.use_cases.context import Ports, all_pages

# An appointment that started before the day may still run into it.
LONGEST_VISIT = timedelta(minutes=MAX_DURATION_MINUTES)
# How many conflicting appointment ids an error names; `count` says how many there are.
LISTED_CONFLICTS = 50


@frozen
class Availability:
    """A doctor's free slots on one local date."""

    doctor: Doctor
    day: date
    slots: list[Slot]


class DoctorUseCases:
    """Register doctors and answer what their days look like."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports

    def register_doctor(self, command: RegisterDoctor) -> tuple[Doctor, bool]:
        """Create or replace a doctor; returns the doctor and whether it is new."""
        countries = self._ports.countries
        countries.require(command.country)
        doctor = Doctor(
            clinic_id=self._ports.clinic_id,
            doctor_id=command.doctor_id,
            name=command.name,
            country=command.country,
            time_zone=command.time_zone or countries.default_zone(command.country),
            working_hours=WorkingHours.parse(command.working_hours),
            slot_minutes=command.slot_minutes,
        )
        doctors = self._ports.doctors
        try:
            # One write in the common case; only a real change of zone costs a look.
            return doctor, doctors.put(doctor, keep_zone=True)
        except ZoneChanged:
            self._check_zone_change(self.doctor(doctor.doctor_id), doctor.time_zone)
        return doctor, doctors.put(doctor)

    def _check_zone_change(self, doctor: Doctor, new_zone: str) -> None:
        """Refuse a new time zone while the doctor has active appointments still to end.

        Their times were chosen, listed and told to patients in the old zone; changing it
        would silently move every one of them to another wall time.
        """
        now = self._ports.now()
        appointments = self._ports.appointments
        pending = [
            a.appointment_id
            for a in all_pages(
                lambda cursor: appointments.list_by_doctor(
                    doctor.doctor_id, now - LONGEST_VISIT, LATEST_INSTANT, MAX_PAGE, cursor
                )
            )
            if a.is_active and a.end > now
        ]
        if pending:
            raise TimeZoneConflict(
                f"the doctor has {len(pending)} active appointments set in {doctor.time_zone}; "
                "cancel or complete them before changing the time zone",
                time_zone=doctor.time_zone,
                requested=new_zone,
                appointment_ids=pending[:LISTED_CONFLICTS],
                count=len(pending),
            )

    def doctor(self, doctor_id: str) -> Doctor:
        """The doctor, or NotFound."""
        found = self._ports.doctors.get(doctor_id)
        if found is None:
            raise NotFound(f"doctor {doctor_id!r} does not exist", doctor_id=doctor_id)
        return found

    def availability(self, doctor_id: str, day: date) -> Availability:
        """The free slots of a doctor on a local date, in order."""
        doctor = self.doctor(doctor_id)
        start, end = doctor.day_bounds(day)
        appointments = self._ports.appointments
        busy = [
            (a.start, a.end)
            for a in all_pages(
                lambda cursor: appointments.list_by_doctor(
                    doctor_id, start - LONGEST_VISIT, end, MAX_PAGE, cursor
                )
            )
            if a.is_active
        ]
        return Availability(doctor, day, free_slots(doctor, day, self._ports.now(), busy))
