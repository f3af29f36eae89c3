"""In-process background work of `citas serve --backend aws`: outbox relay and SQS consumers.

On AWS these are the DynamoDB Stream relay Lambda, one booking worker per country and the
notification consumer, fed by SQS event source mappings. Locally, against DynamoDB Local and an
SQS emulator, they are daemon threads of `citas serve` that call the Lambdas' own message
handlers (`entrypoints.messages`), so the whole event flow of the AWS adapters runs on one
machine:

- the relay moves outbox items to the events FIFO queue (publish, then remove: at least once);
- one booking worker per country long-polls its FIFO queue and books each request;
- the events consumer long-polls the events queue, offers freed time to the waitlist and
  tells patients what happened;
- the cadence and the offers sweeper tick as the scheduled functions do.

A message is deleted only once handled. A failure leaves it on the queue: SQS delivers it
again after a short delay, and after `maxReceiveCount` receives the queue's redrive policy
moves it to its dead-letter queue. Logs carry ids, types and codes, never a message body
(event data holds the patient's name and phone).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws.resources import ResourceNames
from entrypoints.bootstrap import App
from entrypoints.local.runtime import BackgroundThreads, Result, handle_message, log, worker_of
from entrypoints.messages import Fields, MessageHandler, on_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from entrypoints.config import Settings

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
_TABLE_NOT_FOUND: Final = frozenset({"ResourceNotFoundException"})
_RETRY_DELAY: Final = {
    Result.RETRY: RETRY_LATER_SECONDS,
    Result.POISON: POISON_RETRY_SECONDS,
    Result.FAILED: FAILED_RETRY_SECONDS,
}


class LocalStackNotReady(RuntimeError):
    """The emulators are unreachable or the table and queues were not provisioned."""


# --- start-up: the local defaults ---------------------------------------------------------


@contextmanager
def _provisioned(service: str, what: str, endpoint: str, missing: frozenset[str]) -> Iterator[None]:
    """Turn an emulator's refusal to show `what` into one LocalStackNotReady line for the user."""
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in missing:
            raise LocalStackNotReady(
                f"{what} does not exist on {endpoint}: run `citas provision` first"
            ) from error
        raise LocalStackNotReady(f"{service} answered {code} for {what}") from error
    except BotoCoreError as error:
        raise LocalStackNotReady(f"cannot reach {service}: {error}") from error


def _queue_url(sqs: SQSClient, name: str) -> str:
    with _provisioned("SQS", f"queue {name}", sqs.meta.endpoint_url, _QUEUE_NOT_FOUND):
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]


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
    endpoint = dynamodb.meta.endpoint_url
    with _provisioned("DynamoDB", f"table {table_name}", endpoint, _TABLE_NOT_FOUND):
        dynamodb.describe_table(TableName=table_name)


@attrs.frozen
class Consumer:
    """One queue and the message handler of each of its messages."""

    name: str
    queue_url: str
    handle: MessageHandler


# --- the runtime --------------------------------------------------------------------------


class AwsRuntime(BackgroundThreads):
    """The background threads of `citas serve --backend aws`."""

    def __init__(
        self,
        app: App,
        sqs: SQSClient,
        *,
        relay_interval: float = RELAY_INTERVAL_SECONDS,
        wait_seconds: int = WAIT_SECONDS,
    ) -> None:
        super().__init__(app, relay_interval)
        settings = app.settings
        if settings.events_queue_url is None:
            raise ValueError("the aws runtime needs the events queue")
        self._sqs = sqs
        self._wait_seconds = wait_seconds
        self.consumers: tuple[Consumer, ...] = (
            *(
                Consumer(f"booking-{country}", url, worker_of(country))
                for country, url in sorted(settings.booking_queue_urls.items())
            ),
            Consumer("events", settings.events_queue_url, on_event),
        )

    def loops(self) -> dict[str, Callable[[], None]]:
        """One long-polling loop per queue."""
        return {
            f"citas-consumer-{c.name}": functools.partial(self._consume_loop, c)
            for c in self.consumers
        }

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
            fields: Fields = {
                "queue": consumer.name,
                "message_id": message.get("MessageId"),
                "receive_count": attributes.get("ApproximateReceiveCount"),
            }
            result = handle_message(self.app, consumer.handle, message.get("Body", ""), fields)
            if result is Result.DONE:
                self._delete(consumer, message)
            else:
                failed_groups.add(group)
                self._release(consumer, message, _RETRY_DELAY[result])

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
