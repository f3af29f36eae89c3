"""The confirmation cadence: each appointment's due step recorded once, with its event."""

from __future__ import annotations

from datetime import timedelta

from domain.appointment import ACTIVE_STATUSES, Appointment, Status
from domain.cadence import HORIZON
from domain.pagination import MAX_PAGE
from domain.use_cases.context import Ports, all_pages
from ports.repositories import Cursor, Page, Window


class CadenceUseCases:
    """Find the appointments a cadence step is due for, and record each step once."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports

    def due_steps(self) -> list[Appointment]:
        """Active appointments starting within 48 hours that a step is due for now."""
        now = self._ports.now()
        # Steps fire before the start only, and none more than 48 hours ahead.
        window = Window(now, now + HORIZON + timedelta(seconds=1))
        appointments = self._ports.appointments
        due: list[Appointment] = []
        for country in self._ports.countries:
            for status in sorted(ACTIVE_STATUSES):

                def fetch(
                    cursor: Cursor, c: str = country, s: Status = status
                ) -> Page[Appointment]:
                    return appointments.list_by_country_status(c, s, window, MAX_PAGE, cursor)

                due.extend(a for a in all_pages(fetch) if a.due_step(now) is not None)
        return due

    def run_cadence(self) -> list[Appointment]:
        """Record the due step of each appointment once; returns those recorded now."""
        recorded = []
        for appointment in self.due_steps():
            step = appointment.due_step(self._ports.now())
            if step is None:
                continue
            previous = appointment.copy()
            appointment.record_step(
                step.step, now=self._ports.now(), event_id=self._ports.ids.new_id()
            )
            # Conditional on the version and the steps read: a concurrent tick, or a change
            # of the appointment in between, records nothing twice.
            if self._ports.appointments.record_cadence(previous, appointment):
                recorded.append(appointment)
        return recorded
