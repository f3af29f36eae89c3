"""What every use case shares: the ports of one clinic, the clock read in UTC, page walking."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from attrs import define, frozen

from domain.appointment import require_aware
from domain.countries import CountryCatalog
from domain.errors import InvalidCursor, ValidationError
from domain.pagination import MAX_PAGE, PageTokens
from ports.holidays import HolidayCalendar
from ports.messaging import BookingRequestQueue
from ports.patients import PatientContacts
from ports.repositories import (
    AppointmentRepository,
    BookingRequestRepository,
    Cursor,
    DoctorRepository,
    Page,
    WaitlistRepository,
)
from ports.system import Clock, IdGenerator

T = TypeVar("T")


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
    holidays: HolidayCalendar
    # None for a clinic built without waitlist storage (most unit tests): nothing is held.
    waitlist: WaitlistRepository | None = None
    # The clinic's patient contacts, for the opt-outs the waitlist respects; None: nobody opted out.
    contacts: PatientContacts | None = None

    def now(self) -> datetime:
        """The current instant in UTC."""
        # In UTC: aware arithmetic in a zone with DST adds wall time, not elapsed time.
        return require_aware(self.clock.now(), "now")


def all_pages(fetch: Callable[[Cursor], Page[T]]) -> Iterator[T]:
    """Every item of a paginated query, page after page."""
    cursor: Cursor = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.cursor is None:
            return
        cursor = page.cursor


@frozen
class ListResult(Generic[T]):
    """A page of a list and the token of the next page."""

    items: list[T]
    next_token: str | None


def check_limit(limit: int) -> None:
    """Raise ValidationError unless `limit` is a page size the API admits."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit is 1-{MAX_PAGE}", field="limit")


def signed_page(
    tokens: PageTokens,
    query: Mapping[str, Any],
    token: str | None,
    fetch: Callable[[Cursor], Page[T]],
) -> ListResult[T]:
    """One page of `fetch`, its cursor in and out as a token signed for `query`."""
    cursor = tokens.decode(token, query) if token is not None else None
    try:
        page = fetch(cursor)
    except InvalidCursor as e:
        raise ValidationError("next_token is not valid", field="next_token") from e
    after = page.cursor
    next_token = tokens.encode(query, after) if after is not None else None
    return ListResult(list(page.items), next_token)
