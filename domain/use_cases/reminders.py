"""Reminders: a day before each visit, once per start time."""

from __future__ import annotations

from datetime import timedelta

from domain.appointment import ACTIVE_STATUSES, REMINDER_GRACE, REMINDER_LEAD, Appointment, Status
from domain.pagination import MAX_PAGE
from domain.use_cases.context import Ports, all_pages
from ports.repositories import Cursor, Page, Window


class ReminderUseCases:
    """Find the appointments about a day away and record their `ReminderDue` once."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports

    def due_reminders(self) -> list[Appointment]:
        """Active appointments whose 24-hour mark has passed and that were not reminded."""
        now = self._ports.now()
        start_from = now + REMINDER_LEAD - REMINDER_GRACE
        start_to = now + REMINDER_LEAD + timedelta(seconds=1)
        appointments = self._ports.appointments
        due: list[Appointment] = []
        for country in self._ports.countries:
            for status in sorted(ACTIVE_STATUSES):

                def fetch(
                    cursor: Cursor, c: str = country, s: Status = status
                ) -> Page[Appointment]:
                    return appointments.list_by_country_status(
                        c, s, Window(start_from, start_to), MAX_PAGE, cursor
                    )

                due.extend(a for a in all_pages(fetch) if a.is_reminder_due(now))
        return due

    def send_reminders(self) -> list[Appointment]:
        """Record `ReminderDue` once for each due appointment; returns those reminded now."""
        reminded = []
        for appointment in self.due_reminders():
            previous = appointment.copy()
            appointment.remind(now=self._ports.now(), event_id=self._ports.ids.new_id())
            if self._ports.appointments.record_reminder(previous, appointment):
                reminded.append(appointment)
        return reminded
