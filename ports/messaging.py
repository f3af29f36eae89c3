"""Queues, publication and notification."""

from __future__ import annotations

from typing import Protocol

from domain.booking_request import BookingRequest
from domain.events import Event


class EventPublisher(Protocol):
    """Publishes events at least once, ordered per appointment."""

    def publish(self, event: Event) -> None:
        """Send one event."""
        ...


class BookingRequestQueue(Protocol):
    """The per-country queue of asynchronous booking requests, ordered per doctor."""

    def enqueue(self, request: BookingRequest) -> None:
        """Queue a request for its country's worker."""
        ...


class Notifier(Protocol):
    """Delivers a text message to a patient."""

    def send(self, phone: str, text: str, *, appointment_id: str | None) -> None:
        """Send `text` to `phone`."""
        ...
