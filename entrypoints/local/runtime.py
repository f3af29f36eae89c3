"""In-process background work of `citas serve`: the outbox relay, the consumers and the ticks.

On AWS these are the DynamoDB Stream relay Lambda, one booking worker per country, the events
consumer (waitlist refill and patient messages) and the scheduled reminders and offers
sweeper. Here they are daemon threads that call the very message handlers the Lambdas wrap
(`entrypoints.messages`) from polling loops, so the whole event flow runs on one machine.
`BackgroundThreads` is what both backends share: the threads, the relay loop, the cadence and
sweep ticks and `handle_message`, which runs a handler on one message and logs what came of
it.
`LocalRuntime` (the memory backend) polls the in-memory queues; `AwsRuntime`
(`entrypoints.local.aws_runtime`) polls SQS.

Logs carry ids, types and codes, never a message body (it holds the patient's name and phone).
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
import time
from collections.abc import Callable

from domain.errors import TemporarilyUnavailable
from domain.events import Event
from entrypoints.bootstrap import App, MemoryBackend
from entrypoints.messages import (
    Fields,
    MessageHandler,
    Outcome,
    PoisonMessage,
    book_request,
    envelope_body,
    failure_fields,
    is_poison,
    on_event,
    relay_event,
    run_cadence,
    sweep_offers,
)

# Not named `citas.*`: Powertools' Logger(service="citas") filters every logger whose name
# contains "citas" out of the root handlers.
log = logging.getLogger("local.worker")

RELAY_INTERVAL_SECONDS = 0.1
# The confirmation cadence's tick (EventBridge runs it every 15 minutes on AWS).
CADENCE_INTERVAL_SECONDS = 60.0
RELAY_BATCH = 100
TAKE_TIMEOUT_SECONDS = 0.2
# A request whose processing keeps failing is retried this often, then left (dead-lettered).
MAX_ATTEMPTS = 3


class Result(enum.Enum):
    """What became of one message, for its transport."""

    DONE = "done"
    RETRY = "retry"
    POISON = "poison"
    FAILED = "failed"


def handle_message(app: App, handle: MessageHandler, body: str | None, fields: Fields) -> Result:
    """Run `handle` on one message body and log what came of it; never raises."""
    try:
        outcome: Outcome = handle(app, body, fields)
    except Exception as error:
        return _failed(error, fields)
    log.info(outcome.message, extra={"fields": fields})
    return Result.DONE


def _failed(error: Exception, fields: Fields) -> Result:
    # The type, code and origin, never the text: an exception could quote patient data.
    fields.update(failure_fields(error))
    if is_poison(error):
        if isinstance(error, PoisonMessage):
            fields["reason"] = str(error)  # our own words, about the message's shape
        log.error("poison message; left for the dead-letter queue", extra={"fields": fields})
        return Result.POISON
    if isinstance(error, TemporarilyUnavailable):
        fields["service"] = error.details.get("service")
        log.warning("backend busy; message will come again", extra={"fields": fields})
        return Result.RETRY
    log.error("message failed; it will come again", extra={"fields": fields})
    return Result.FAILED


def worker_of(country: str) -> MessageHandler:
    """The booking handler of `country`'s worker, as each country's Lambda is configured."""

    def book(app: App, body: str | None, fields: Fields) -> Outcome:
        return book_request(app, body, fields, country=country)

    return book


class BackgroundThreads:
    """The daemon threads of a local runtime: the outbox relay and one loop per consumer."""

    def __init__(
        self,
        app: App,
        relay_interval: float,
        cadence_interval: float = CADENCE_INTERVAL_SECONDS,
        sweep_interval: float | None = None,
    ) -> None:
        self.app = app
        self._relay_interval = relay_interval
        self._cadence_interval = cadence_interval
        # CITAS_SWEEP_SECONDS unless a caller (a test) paces it itself.
        self._sweep_interval = (
            sweep_interval if sweep_interval is not None else app.settings.sweep_seconds
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def loops(self) -> dict[str, Callable[[], None]]:
        """Thread name -> the polling loop it runs, besides the relay."""
        return {}

    def start(self) -> None:
        """Start the relay and every polling loop."""
        if self._threads:
            return
        self._stop.clear()
        targets = {
            "citas-outbox-relay": self._relay_loop,
            "citas-cadence": self._cadence_loop,
            "citas-offers-sweeper": self._sweep_loop,
            **self.loops(),
        }
        self._threads = [
            threading.Thread(target=target, name=name, daemon=True)
            for name, target in targets.items()
        ]
        for thread in self._threads:
            thread.start()
        log.info("background work started", extra={"fields": {"threads": list(targets)}})

    def stop(self, timeout: float = 3.0) -> None:
        """Signal every thread to stop and wait for them, `timeout` seconds in all."""
        self._stop.set()
        # One deadline for all: a thread stuck retrying a vanished emulator must not make
        # Ctrl-C wait once per thread. They are daemons; the process ends without them.
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    @property
    def running(self) -> bool:
        """Whether any background thread is alive."""
        return any(t.is_alive() for t in self._threads)

    def relay(self) -> int:
        """Publish the pending outbox events, forgetting each one published; how many moved."""
        moved = 0
        for event in self.app.outbox.pending(RELAY_BATCH):
            relay_event(self.app, event, {})
            moved += 1
        return moved

    def tick(self) -> int:
        """Run the confirmation cadence once (as the scheduled function does); steps recorded."""
        fields: Fields = {}
        outcome = run_cadence(self.app, fields)
        if outcome.count or fields.get("held_sent"):
            log.info(outcome.message, extra={"fields": fields})
        return outcome.count

    def sweep(self) -> int:
        """Let go of the expired waitlist offers once (as the scheduled function does); how many."""
        fields: Fields = {}
        outcome = sweep_offers(self.app, fields)
        if outcome.count:
            log.info(outcome.message, extra={"fields": fields})
        return outcome.count

    def _cadence_loop(self) -> None:
        self._tick_loop(self._cadence_interval, self.tick, "cadence tick failed")

    def _sweep_loop(self) -> None:
        self._tick_loop(self._sweep_interval, self.sweep, "offers sweep failed")

    def _tick_loop(self, interval: float, tick: Callable[[], int], failure: str) -> None:
        while not self._stop.wait(interval):
            try:
                tick()
            except Exception as error:
                log.warning(failure, extra={"fields": failure_fields(error)})

    def _relay_loop(self) -> None:
        while not self._stop.is_set():
            self._relay("outbox relay failed; retrying")
            self._stop.wait(self._relay_interval)
        # Publish what the last requests committed before going away.
        self._relay("outbox relay failed at shutdown")

    def _relay(self, failure: str) -> None:
        try:
            moved = self.relay()
        except Exception as error:
            fields = failure_fields(error)
            if isinstance(error, TemporarilyUnavailable):
                fields["service"] = error.details.get("service")
            log.warning(failure, extra={"fields": fields})
            return
        if moved:
            log.info("outbox relayed", extra={"fields": {"events": moved}})


class LocalRuntime(BackgroundThreads):
    """The background threads of `citas serve` on the memory backend."""

    def __init__(self, app: App, *, relay_interval: float = RELAY_INTERVAL_SECONDS) -> None:
        if app.memory is None:
            raise ValueError("the local runtime drives the memory backend only")
        super().__init__(app, relay_interval)
        self._memory: MemoryBackend = app.memory
        self._attempts: dict[str, int] = {}
        self._subscribed = False

    def start(self) -> None:
        """Hand every published event to the events handler, then start the threads."""
        if not self._subscribed:
            self._memory.publisher.subscribe(self._notify)
            self._subscribed = True
        super().start()

    def loops(self) -> dict[str, Callable[[], None]]:
        """One booking worker per served country."""
        return {
            f"citas-worker-{country}": functools.partial(self._worker_loop, country)
            for country in self.app.settings.countries
        }

    def _notify(self, event: Event) -> None:
        # The body SQS would carry: the events handler (refill, then message) parses it as on
        # AWS. A failure is logged there, and must not make the relay publish it forever.
        handle_message(self.app, on_event, envelope_body(event), {"queue": "events"})

    def _worker_loop(self, country: str) -> None:
        queue = self._memory.request_queue
        while not self._stop.is_set():
            try:
                body = queue.receive(country, timeout=TAKE_TIMEOUT_SECONDS)
            except Exception as error:
                log.warning("booking queue failed", extra={"fields": failure_fields(error)})
                self._stop.wait(TAKE_TIMEOUT_SECONDS)
                continue
            if body is not None:
                self._book(country, body)

    def _book(self, country: str, body: str) -> None:
        attempts = self._attempts.pop(body, 0) + 1
        fields: Fields = {"queue": f"booking-{country}", "attempt": attempts}
        result = handle_message(self.app, worker_of(country), body, fields)
        if result in (Result.DONE, Result.POISON):
            return
        # Like an SQS visibility timeout: wait a moment before the message comes back.
        self._stop.wait(TAKE_TIMEOUT_SECONDS)
        if attempts < MAX_ATTEMPTS:
            self._attempts[body] = attempts
            self._memory.request_queue.send(country, body)
        else:
            log.error("booking request failed too often; given up", extra={"fields": fields})
