"""In-process background work of `citas serve --backend aws`: outbox relay and SQS consumers.

On AWS these are the DynamoDB Stream relay Lambda, one booking worker per country and the
notification consumer, fed by SQS event source mappings. Locally, against DynamoDB Local and an
SQS emulator, they are daemon threads of `citas serve`, so the whole event flow of the AWS
adapters runs on one machine:

- the relay moves outbox items to the events FIFO queue (publish, then remove: at least once);
- one booking worker per country long-polls its FIFO queue and books each request;
- the events consumer long-polls the events queue and tells patients what happened.

A message is deleted only once handled. A failure leaves it on the queue: SQS delivers it
again after a short delay, and after `maxReceiveCount` receives the queue's redrive policy
moves it to its dead-letter queue. Logs carry ids, types and codes, never a message body
(event data holds the patient's name and phone).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws.resources import ResourceNames
from domain.booking_request import BookingRequest
from domain.errors import CitasError, NotFound, TemporarilyUnavailable, ValidationError
from domain.events import Event, event_from_envelope
from entrypoints.local.runtime import BookingProcessor, EventSink, Outbox, relay_once

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from entrypoints.config import Settings

log = logging.getLogger("local.aws_runtime")

RELAY_INTERVAL_SECONDS: Final = 0.2
# Long polls of one second: an idle consumer costs one request a second, and stop() never
# waits more than about a second for a thread blocked in ReceiveMessage.
WAIT_SECONDS: Final = 1
BATCH: Final = 10
# The queues' own visibility timeout (60 s, from Terraform) suits a Lambda; locally a failed
# message should come back sooner. A throttled or unreachable backend gets a short pause.
RETRY_LATER_SECONDS: Final = 2
# An unexpected error may be a passing fault or a bug: a longer pause, then the DLQ.
FAILED_RETRY_SECONDS: Final = 5
# A poison message can never succeed: it comes back at once, so the redrive policy moves it to
# the dead-letter queue within a second instead of blocking its FIFO group for minutes.
POISON_RETRY_SECONDS: Final = 0
ERROR_PAUSE_SECONDS: Final = 1.0
_QUEUE_NOT_FOUND: Final = frozenset(
    {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"}
)


class LocalStackNotReady(RuntimeError):
    """The emulators are unreachable or the table and queues were not provisioned."""


class Poison(Exception):
    """A message that can never be handled (unparseable, or naming nothing known)."""


class Outcome(enum.Enum):
    """What became of one message."""

    DONE = "done"
    RETRY = "retry"
    POISON = "poison"
    FAILED = "failed"


_RETRY_DELAY: Final = {
    Outcome.RETRY: RETRY_LATER_SECONDS,
    Outcome.POISON: POISON_RETRY_SECONDS,
    Outcome.FAILED: FAILED_RETRY_SECONDS,
}

# A handler turns a message body into the log fields of its success, or raises.
Handler = Callable[[str], dict[str, object]]


class Messenger(Protocol):
    """What the events consumer needs of `PatientMessenger`."""

    def __call__(self, event: Event) -> object:
        """Tell the patient about `event`, once."""
        ...


# --- start-up: the local defaults ---------------------------------------------------------


def _queue_url(sqs: SQSClient, name: str) -> str:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _QUEUE_NOT_FOUND:
            raise LocalStackNotReady(
                f"queue {name} does not exist on {sqs.meta.endpoint_url}:"
                " run `citas provision` first"
            ) from error
        raise LocalStackNotReady(f"SQS answered {code} for queue {name}") from error
    except BotoCoreError as error:
        raise LocalStackNotReady(f"cannot reach SQS: {error}") from error


def with_local_queue_urls(settings: Settings, sqs: SQSClient) -> Settings:
    """`settings` with every queue URL it lacks looked up by its local default name."""
    countries = list(settings.countries)
    missing = [c for c in countries if c not in settings.booking_queue_urls]
    if settings.events_queue_url is not None and not missing:
        return settings
    # Queue URLs hold an account id and a host that only the emulator knows; names are fixed.
    names = ResourceNames.local_defaults(countries)
    events = settings.events_queue_url or _queue_url(sqs, names.events_queue)
    booking = dict(settings.booking_queue_urls)
    for country in missing:
        booking[country] = _queue_url(sqs, names.booking_queues[country])
    return attrs.evolve(settings, events_queue_url=events, booking_queue_urls=booking)


def check_table(dynamodb: DynamoDBClient, table_name: str) -> None:
    """Fail with a clear message unless the table exists on the configured endpoint."""
    try:
        dynamodb.describe_table(TableName=table_name)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == "ResourceNotFoundException":
            raise LocalStackNotReady(
                f"table {table_name} does not exist on {dynamodb.meta.endpoint_url}:"
                " run `citas provision` first"
            ) from error
        raise LocalStackNotReady(f"DynamoDB answered {code} for table {table_name}") from error
    except BotoCoreError as error:
        raise LocalStackNotReady(f"cannot reach DynamoDB: {error}") from error


# --- message handlers ---------------------------------------------------------------------


def booking_handler(clinic: BookingProcessor) -> Handler:
    """Handle a queued request (or an old `{"request_id": ...}`): book it, safe to run twice."""

    def handle(body: str) -> dict[str, object]:
        try:
            raw = json.loads(body)
            request_id = raw["request_id"]
        except (ValueError, KeyError, TypeError) as error:
            raise Poison("unparseable body") from error
        if not isinstance(request_id, str) or not request_id:
            raise Poison("unparseable body")
        queued = None
        if set(raw) != {"request_id"}:
            try:
                queued = BookingRequest.from_message(raw)
            except ValidationError as error:
                raise Poison("unparseable body") from error
        try:
            request = clinic.process_booking_request(request_id, queued)
        except NotFound as error:
            raise Poison("unknown booking request") from error
        fields: dict[str, object] = {"request_id": request_id, "status": str(request.status)}
        if request.error is not None:
            fields["code"] = request.error.get("code")
        return fields

    return handle


def events_handler(messenger: Messenger) -> Handler:
    """Handle an event envelope: the patient's message, once per event id."""

    def handle(body: str) -> dict[str, object]:
        try:
            event = event_from_envelope(json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise Poison("not an event envelope") from error
        sent = messenger(event)
        return {
            "event_id": event.event_id,
            "type": event.type,
            "appointment_id": event.appointment_id,
            "notified": bool(sent),
        }

    return handle


@attrs.frozen
class Consumer:
    """One queue and what to do with each of its messages."""

    name: str
    queue_url: str
    handle: Handler


# --- the runtime --------------------------------------------------------------------------


class AwsRuntime:
    """The background threads of `citas serve --backend aws`."""

    def __init__(
        self,
        *,
        clinic: BookingProcessor,
        outbox: Outbox,
        publisher: EventSink,
        sqs: SQSClient,
        events_queue_url: str,
        booking_queue_urls: Mapping[str, str],
        messenger: Messenger,
        relay_interval: float = RELAY_INTERVAL_SECONDS,
        wait_seconds: int = WAIT_SECONDS,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._sqs = sqs
        self._relay_interval = relay_interval
        self._wait_seconds = wait_seconds
        self.consumers: tuple[Consumer, ...] = (
            *(
                Consumer(f"booking-{country}", url, booking_handler(clinic))
                for country, url in sorted(booking_queue_urls.items())
            ),
            Consumer("events", events_queue_url, events_handler(messenger)),
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the relay, one worker per country's queue and the events consumer."""
        if self._threads:
            return
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._relay_loop, name="citas-outbox-relay", daemon=True)
        ]
        self._threads += [
            threading.Thread(
                target=self._consume_loop,
                args=(consumer,),
                name=f"citas-consumer-{consumer.name}",
                daemon=True,
            )
            for consumer in self.consumers
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "background work started",
            extra={"fields": {"consumers": [c.name for c in self.consumers]}},
        )

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

    # The relay ---------------------------------------------------------------------------

    def _relay_loop(self) -> None:
        while not self._stop.is_set():
            self._relay("outbox relay failed; retrying")
            self._stop.wait(self._relay_interval)
        # Publish what the last requests committed before going away.
        self._relay("outbox relay failed at shutdown")

    def _relay(self, failure: str) -> None:
        try:
            moved = relay_once(self._outbox, self._publisher)
        except Exception as error:
            # Only the type: a message could quote an event, and events hold patient data.
            fields: dict[str, object] = {"error": type(error).__name__}
            if isinstance(error, CitasError):
                fields["service"] = error.details.get("service")
            log.warning(failure, extra={"fields": fields})
            return
        if moved:
            log.info("outbox relayed", extra={"fields": {"events": moved}})

    # The consumers -----------------------------------------------------------------------

    def _consume_loop(self, consumer: Consumer) -> None:
        while not self._stop.is_set():
            try:
                answer = self._sqs.receive_message(
                    QueueUrl=consumer.queue_url,
                    MaxNumberOfMessages=BATCH,
                    WaitTimeSeconds=self._wait_seconds,
                    MessageSystemAttributeNames=["MessageGroupId", "ApproximateReceiveCount"],
                )
            except Exception as error:
                log.warning(
                    "queue receive failed; retrying",
                    extra={"fields": {"queue": consumer.name, "error": type(error).__name__}},
                )
                self._stop.wait(ERROR_PAUSE_SECONDS)
                continue
            self.handle_batch(consumer, answer.get("Messages", []))

    def handle_batch(self, consumer: Consumer, messages: list[MessageTypeDef]) -> None:
        """Handle messages in order; after a failure, hold back the rest of its FIFO group."""
        failed_groups: set[str] = set()
        for message in messages:
            attributes = message.get("Attributes", {})
            group = attributes.get("MessageGroupId", "")
            if group in failed_groups:
                # Handling it now would overtake the failed message of its group: give it
                # back untouched, it comes again right after that one.
                self._release(consumer, message, 0)
                continue
            outcome = self._handle(consumer, message)
            if outcome is Outcome.DONE:
                self._delete(consumer, message)
            else:
                failed_groups.add(group)
                self._release(consumer, message, _RETRY_DELAY[outcome])

    def _handle(self, consumer: Consumer, message: MessageTypeDef) -> Outcome:
        fields: dict[str, object] = {
            "queue": consumer.name,
            "message_id": message.get("MessageId"),
            "receive_count": message.get("Attributes", {}).get("ApproximateReceiveCount"),
        }
        try:
            fields.update(consumer.handle(message.get("Body", "")))
        except Poison as poison:
            fields["reason"] = str(poison)
            log.error("poison message; left for the dead-letter queue", extra={"fields": fields})
            return Outcome.POISON
        except TemporarilyUnavailable as error:
            fields["service"] = error.details.get("service")
            log.warning("backend busy; message will come again", extra={"fields": fields})
            return Outcome.RETRY
        except Exception as error:
            # The type and the code, never the text: it could quote patient data.
            fields["error"] = type(error).__name__
            if isinstance(error, CitasError):
                fields["code"] = error.code
            log.error("message failed; it will come again", extra={"fields": fields})
            return Outcome.FAILED
        log.info("message handled", extra={"fields": fields})
        return Outcome.DONE

    def _delete(self, consumer: Consumer, message: MessageTypeDef) -> None:
        try:
            self._sqs.delete_message(
                QueueUrl=consumer.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except Exception as error:
            # Handled but not deleted: it comes again and the handler's idempotency absorbs it.
            log.warning(
                "delete failed; the message will come again",
                extra={"fields": {"queue": consumer.name, "error": type(error).__name__}},
            )

    def _release(self, consumer: Consumer, message: MessageTypeDef, delay: int) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=consumer.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=delay,
            )
        except Exception as error:
            # Then it simply comes back after the queue's own visibility timeout.
            log.warning(
                "could not shorten the visibility timeout",
                extra={"fields": {"queue": consumer.name, "error": type(error).__name__}},
            )
