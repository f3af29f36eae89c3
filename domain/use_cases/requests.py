"""Asynchronous booking requests: accepted now, booked later in order by the country's worker."""

from __future__ import annotations

from attrs import frozen

from domain.appointment import require_aware
from domain.booking_request import BookingRequest, RequestStatus
from domain.commands import BookAppointment
from domain.errors import CitasError, NotFound, TemporarilyUnavailable, ValidationError
from domain.use_cases.booking import BookingUseCases
from domain.use_cases.context import Ports
from domain.use_cases.doctors import DoctorUseCases

# The booking worker's keys (one per booking request) contain a space, which no client key
# may: a client can never name, take or poison a key of citas's own. Client keys are stored
# as sent, so keys in flight across an upgrade keep working.
REQUEST_KEYS = "booking-request "


@frozen
class ProcessedRequest:
    """A booking request after a worker saw it, and whether that worker processed it."""

    request: BookingRequest
    processed_now: bool


class BookingRequestUseCases:
    """Queue booking requests and let the country's worker book them, each exactly once."""

    def __init__(self, ports: Ports, doctors: DoctorUseCases, booking: BookingUseCases) -> None:
        self._ports = ports
        self._doctors = doctors
        self._booking = booking

    def request_booking(self, command: BookAppointment) -> BookingRequest:
        """Accept a booking for the doctor's country worker; it is booked later, in order."""
        require_aware(command.start, "start")
        # The cached schedule: only the doctor's country (its worker) is needed here.
        doctor = self._doctors.schedule(command.doctor_id).doctor
        now = self._ports.now()
        request = BookingRequest(
            clinic_id=self._ports.clinic_id,
            request_id=self._ports.ids.new_id(),
            country=doctor.country,
            command=command,
            created_at=now,
            updated_at=now,
        )
        # Queued first, then stored: the message carries the whole request, so a request
        # that could not be queued is never stored (TemporarilyUnavailable: 503, nothing
        # pending), and one queued but not stored (503 too) is stored by the worker.
        self._ports.request_queue.enqueue(request)
        self._store_new_request(request)
        return request

    def _store_new_request(self, request: BookingRequest) -> None:
        requests = self._ports.requests
        try:
            requests.add(request)
        except ValueError:
            # The id is taken: the worker stored (and maybe booked) the queued copy first.
            if requests.get(request.request_id) is None:
                raise

    def booking_request(self, request_id: str) -> BookingRequest:
        """A booking request, or NotFound."""
        found = self._ports.requests.get(request_id)
        if found is None:
            raise NotFound(f"booking request {request_id!r} does not exist", request_id=request_id)
        return found

    def process_booking_request(
        self, request_id: str, queued: BookingRequest | None = None
    ) -> BookingRequest:
        """Book a queued request; safe to run twice for the same request.

        `queued` is the copy the message carried: a request queued but never stored (the
        store failed after the enqueue) is stored from it first. Without it, NotFound.
        """
        return self.handle_booking_request(request_id, queued).request

    def handle_booking_request(
        self,
        request_id: str,
        queued: BookingRequest | None = None,
        *,
        country: str | None = None,
    ) -> ProcessedRequest:
        """Book a queued request once, and say whether this call processed it.

        With `country` (a country's worker), a request of another country is a
        ValidationError: that worker must never book it. A request no longer pending is
        returned as it is, with `processed_now` False.
        """
        if queued is not None and queued.request_id != request_id:
            raise ValidationError("the queued request has another id", field="request_id")
        if queued is not None and queued.clinic_id != self._ports.clinic_id:
            # A message is handed to its own clinic's use cases; anything else is a bug.
            raise ValidationError("the queued request belongs to another clinic", field="clinic_id")
        request = self._ports.requests.get(request_id)
        found = request if request is not None else queued
        if found is None:
            raise NotFound(f"booking request {request_id!r} does not exist", request_id=request_id)
        if country is not None and found.country != country:
            raise ValidationError(
                "the request belongs to another country's worker",
                field="country",
                country=found.country,
            )
        if request is None:
            request = self._store_queued(found)
        if request.status is not RequestStatus.PENDING:
            return ProcessedRequest(request, processed_now=False)
        self._book(request)
        self._ports.requests.save(request)
        return ProcessedRequest(request, processed_now=True)

    def _book(self, request: BookingRequest) -> None:
        """Book the request's appointment, or record why it cannot be booked."""
        now = self._ports.now
        try:
            # The request id as idempotency key: a worker that crashed after booking and
            # runs again finds the booking instead of making a second one.
            appointment = self._booking.book_under(
                request.command, REQUEST_KEYS + request.request_id
            )
        except TemporarilyUnavailable:
            raise
        except CitasError as e:
            request.rejected(e, now(), self._ports.ids.new_id())
        else:
            request.booked(appointment.appointment_id, now())

    def _store_queued(self, queued: BookingRequest) -> BookingRequest:
        """Store a request queued but never stored (its store failed after the enqueue)."""
        self._store_new_request(
            BookingRequest(
                clinic_id=queued.clinic_id,
                request_id=queued.request_id,
                country=queued.country,
                command=queued.command,
                created_at=queued.created_at,
                updated_at=queued.created_at,
            )
        )
        return self.booking_request(queued.request_id)
