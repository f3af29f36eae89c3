"""The memory backend's queues and notifier: in-process stand-ins for SQS and the SMS gateway."""

from __future__ import annotations

import collections
import json
import queue
import threading
from collections.abc import Callable

from domain.booking_request import BookingRequest
from domain.events import Event
from ports.messaging import MessageRefused, OutboundMessage


class InMemoryEventPublisher:
    """Keeps published events in a list and hands each to optional subscribers."""

    def __init__(self) -> None:
        self.published: list[Event] = []
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, handler: Callable[[Event], None]) -> None:
        """Call `handler` for each event published from now on."""
        self._subscribers.append(handler)

    def publish(self, event: Event) -> None:
        """Record and hand out one event."""
        with self._lock:
            self.published.append(event)
        for handler in self._subscribers:
            handler(event)


class InMemoryBookingRequestQueue:
    """One FIFO queue per country, thread-safe, carrying the message body SQS would carry."""

    def __init__(self) -> None:
        self._queues: dict[str, queue.Queue[str]] = collections.defaultdict(queue.Queue)
        self._lock = threading.Lock()

    def enqueue(self, request: BookingRequest) -> None:
        """Queue the whole request (`BookingRequest.to_message` JSON) on its country's queue."""
        # The same body as the SQS adapter's, so `make run` runs the worker's whole path.
        self.send(request.country, json.dumps(request.to_message(), separators=(",", ":")))

    def send(self, country: str, body: str) -> None:
        """Queue a message body as it is (a worker putting back one it could not handle)."""
        self._queue(country).put(body)

    def receive(self, country: str, timeout: float | None = None) -> str | None:
        """The next message body of `country`, or None after `timeout` seconds."""
        try:
            return self._queue(country).get(timeout=timeout)
        except queue.Empty:
            return None

    def take(self, country: str, timeout: float | None = None) -> str | None:
        """The request id of the next message of `country`, or None after `timeout` seconds."""
        body = self.receive(country, timeout)
        if body is None:
            return None
        request_id: str = json.loads(body)["request_id"]
        return request_id

    def _queue(self, country: str) -> queue.Queue[str]:
        with self._lock:
            return self._queues[country]


class InMemoryNotifier:
    """Keeps every message sent, for tests; a channel in `refusing` refuses every message."""

    def __init__(self) -> None:
        self.messages: list[OutboundMessage] = []
        self.refusing: set[str] = set()
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> str | None:
        """Record one message; its made-up provider id."""
        if message.channel in self.refusing:
            raise MessageRefused(f"{message.channel} refused the message: TestRefusal")
        with self._lock:
            self.messages.append(message)
            return f"{message.channel}-{len(self.messages)}"

    @property
    def sent(self) -> list[tuple[str, str, str | None]]:
        """(phone, text, appointment id) of every message sent, in order."""
        with self._lock:
            return [(m.phone, m.text, m.appointment_id) for m in self.messages]
