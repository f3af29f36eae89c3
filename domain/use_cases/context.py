"""What every use case shares: the ports of one clinic, the clock read in UTC, page walking."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from attrs import define

from domain.appointment import Appointment, require_aware
from domain.countries import CountryCatalog
from domain.pagination import PageTokens
from ports.messaging import BookingRequestQueue
from ports.repositories import (
    AppointmentRepository,
    BookingRequestRepository,
    Cursor,
    DoctorRepository,
    Page,
)
from ports.system import Clock, IdGenerator


@define
class Ports:
    """The adapters one `Clinic` talks to; shared (and replaceable) by all its use cases.

    The repositories are this clinic's own: every key they read or write starts with
    `clinic_id`, so a use case cannot reach another clinic's data even by mistake.
    """

    clinic_id: str
    appointments: AppointmentRepository
    doctors: DoctorRepository
    requests: BookingRequestRepository
    request_queue: BookingRequestQueue
    clock: Clock
    ids: IdGenerator
    countries: CountryCatalog
    page_tokens: PageTokens

    def now(self) -> datetime:
        """The current instant in UTC."""
        # In UTC: aware arithmetic in a zone with DST adds wall time, not elapsed time.
        return require_aware(self.clock.now(), "now")


def all_pages(fetch: Callable[[Cursor], Page]) -> Iterator[Appointment]:
    """Every item of a paginated query, page after page."""
    cursor: Cursor = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.cursor is None:
            return
        cursor = page.cursor
