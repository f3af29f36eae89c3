"""In-process background work of the memory backend: outbox relay, queue workers, notifier.

On AWS these are a DynamoDB Stream relay Lambda, one SQS consumer per country and the
notification consumer. Here they are daemon threads of `citas serve`, so the whole event flow
runs on one machine without any service.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from domain.booking_request import BookingRequest
from domain.errors import CitasError
from domain.events import Event

log = logging.getLogger("local.runtime")

RELAY_INTERVAL_SECONDS = 0.1
RELAY_BATCH = 100
TAKE_TIMEOUT_SECONDS = 0.2
# A request whose processing keeps failing is retried this often, then left (dead-lettered).
MAX_ATTEMPTS = 3


class Outbox(Protocol):
    """What the relay needs of an event outbox."""

    def pending(self, limit: int) -> Sequence[Event]:
        """Up to `limit` unpublished events, in commit order."""
        ...

    def remove(self, event_ids: Sequence[str]) -> None:
        """Forget published events."""
        ...


class EventSink(Protocol):
    """What the relay needs of a publisher: the in-memory one, or SQS on the aws backend."""

    def publish(self, event: Event) -> None:
        """Send one event."""
        ...


class Publisher(EventSink, Protocol):
    """What the relay and the notifier need of the in-memory publisher."""

    def subscribe(self, handler: Callable[[Event], None]) -> None:
        """Call `handler` for each event published from now on."""
        ...


class RequestQueue(Protocol):
    """What a worker needs of the in-memory booking-request queue."""

    def take(self, country: str, timeout: float | None = None) -> str | None:
        """The next request id of `country`, or None after `timeout` seconds."""
        ...

    def enqueue(self, request: BookingRequest) -> None:
        """Queue a request again."""
        ...


class BookingProcessor(Protocol):
    """What a worker needs of `Clinic`."""

    def process_booking_request(
        self, request_id: str, queued: BookingRequest | None = None
    ) -> BookingRequest:
        """Book a queued request (stored first from `queued` if it was never stored)."""
        ...

    def booking_request(self, request_id: str) -> BookingRequest:
        """A booking request, or NotFound."""
        ...


def relay_once(outbox: Outbox, publisher: EventSink, batch: int = RELAY_BATCH) -> int:
    """Publish pending events, then forget each one published; returns how many moved."""
    moved = 0
    for event in outbox.pending(batch):
        # Publish first, remove after: a crash in between publishes again (at least once).
        publisher.publish(event)
        outbox.remove([event.event_id])
        moved += 1
    return moved


class LocalRuntime:
    """The background threads of `citas serve` on the memory backend."""

    def __init__(
        self,
        *,
        clinic: BookingProcessor,
        outbox: Outbox,
        publisher: Publisher,
        request_queue: RequestQueue,
        countries: Iterable[str],
        messenger: Callable[[Event], object],
        relay_interval: float = RELAY_INTERVAL_SECONDS,
    ) -> None:
        self._clinic = clinic
        self._outbox = outbox
        self._publisher = publisher
        self._queue = request_queue
        self._countries = tuple(countries)
        self._relay_interval = relay_interval
        self._messenger = messenger
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._attempts: dict[str, int] = {}
        self._subscribed = False

    def start(self) -> None:
        """Subscribe the console notifier and start the relay and one worker per country."""
        if self._threads:
            return
        if not self._subscribed:
            self._publisher.subscribe(self._notify)
            self._subscribed = True
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._relay_loop, name="citas-outbox-relay", daemon=True)
        ]
        self._threads += [
            threading.Thread(
                target=self._worker_loop,
                args=(country,),
                name=f"citas-worker-{country}",
                daemon=True,
            )
            for country in self._countries
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "background work started",
            extra={"fields": {"countries": list(self._countries)}},
        )

    def stop(self, timeout: float = 2.0) -> None:
        """Signal every thread to stop and wait for them a little."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    @property
    def running(self) -> bool:
        """Whether any background thread is alive."""
        return any(t.is_alive() for t in self._threads)

    def _notify(self, event: Event) -> None:
        try:
            self._messenger(event)
        except Exception:
            # A notifier failure must not make the relay publish the event forever.
            log.exception("patient messenger failed", extra={"fields": {"event": event.type}})

    def _relay_loop(self) -> None:
        while not self._stop.is_set():
            try:
                relay_once(self._outbox, self._publisher)
            except Exception:
                log.exception("outbox relay failed; retrying")
            self._stop.wait(self._relay_interval)
        # Publish what the last requests committed before going away.
        try:
            relay_once(self._outbox, self._publisher)
        except Exception:
            log.exception("outbox relay failed at shutdown")

    def _worker_loop(self, country: str) -> None:
        while not self._stop.is_set():
            try:
                request_id = self._queue.take(country, timeout=TAKE_TIMEOUT_SECONDS)
            except Exception:
                log.exception("booking queue failed", extra={"fields": {"country": country}})
                self._stop.wait(TAKE_TIMEOUT_SECONDS)
                continue
            if request_id is not None:
                self._process(country, request_id)

    def _process(self, country: str, request_id: str) -> None:
        fields: dict[str, object] = {"country": country, "request_id": request_id}
        try:
            request = self._clinic.process_booking_request(request_id)
        except Exception as error:
            # Only the type and code: an exception message could quote patient data.
            fields["error"] = type(error).__name__
            if isinstance(error, CitasError):
                fields["code"] = error.code
            attempts = self._attempts.get(request_id, 0) + 1
            fields["attempt"] = attempts
            # Like an SQS visibility timeout: wait a moment before the message comes back.
            self._stop.wait(TAKE_TIMEOUT_SECONDS)
            if attempts < MAX_ATTEMPTS and self._requeue(request_id):
                self._attempts[request_id] = attempts
                log.warning("booking request failed; queued again", extra={"fields": fields})
            else:
                self._attempts.pop(request_id, None)
                log.error("booking request failed; giving up", extra={"fields": fields})
            return
        self._attempts.pop(request_id, None)
        fields["status"] = str(request.status)
        if request.error is not None:
            fields["code"] = request.error.get("code")
        log.info("booking request processed", extra={"fields": fields})

    def _requeue(self, request_id: str) -> bool:
        try:
            self._queue.enqueue(self._clinic.booking_request(request_id))
        except Exception:
            return False
        return True
