"""Lambda handler of the outbox relay: DynamoDB Stream records of outbox items to the events queue.

Each outbox item was written in the same transaction as the change it records. For each new
one the relay sends the event to the events FIFO queue (`MessageGroupId` = appointment id,
`MessageDeduplicationId` = event id) and then deletes the item
(`entrypoints.messages.relay_event`). Publish first, delete after: a crash in between
publishes again on the retry, which SQS drops within its 5-minute deduplication window and
consumers drop by event id after it. A record whose item is already gone (a replay) is
published and "deleted" again, harmlessly.

A stream is ordered per shard, so the first record that fails stops the batch: it and every
record after it are reported in `batchItemFailures` and retried in order, never overtaken.
Logs carry event ids, types and appointment ids only.

Handler string: `entrypoints.lambda.outbox_relay.handler`.
"""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from adapters.aws.dynamodb import EVENT_SK, event_from_item, outbox_pk
from domain.events import Event
from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.consumers import (
    LambdaHandler,
    SkippedAfterFailure,
    failure_logged,
    log_batch,
    report,
)
from entrypoints.messages import Fields, relay_event
from entrypoints.observability import logger, metrics

OUTBOX_PREFIX: Final = outbox_pk("")


def outbox_event(record: DynamoDBRecord) -> Event | None:
    """The event of a new outbox item, or None for any other stream record."""
    stream = record.dynamodb
    if record.event_name is not DynamoDBRecordEventName.INSERT or stream is None:
        return None  # modifications and deletes (the relay's own) publish nothing
    image = stream.new_image
    pk = image.get("pk")
    if not isinstance(pk, str) or not pk.startswith(OUTBOX_PREFIX) or image.get("sk") != EVENT_SK:
        return None
    return event_from_item(image)


class _Relay:
    """The record handler of one invocation: relays each event, stops at the first failure."""

    def __init__(self, app: AppSource) -> None:
        self.app = app
        self.failed = False

    def __call__(self, record: DynamoDBRecord) -> None:
        stream = record.dynamodb
        fields: Fields = {"sequence_number": stream.sequence_number if stream is not None else None}
        with failure_logged("RelayFailures", fields):
            if self.failed:
                raise SkippedAfterFailure("an earlier record of this shard failed")
            try:
                self._relay(record, fields)
            except Exception:
                self.failed = True
                raise

    def _relay(self, record: DynamoDBRecord, fields: Fields) -> None:
        event = outbox_event(record)
        if event is None:
            logger.debug("not an outbox insert, ignored", extra=fields)
            return
        report(relay_event(self.app(), event, fields), fields)


def make_handler(app: AppSource) -> LambdaHandler:
    """The relay's Lambda handler, running on the app `app` returns."""
    # Failures are answered, not raised, even when every record failed: the stream retries
    # the batch from the first reported sequence number either way, and the answer is easier
    # to test.
    processor = BatchProcessor(EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)

    @logger.inject_lambda_context(log_event=False, clear_state=True)
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        """A batch of stream records in, the records to retry out."""
        response = process_partial_response(
            event=event, record_handler=_Relay(app), processor=processor, context=context
        )
        log_batch(response, len(event.get("Records", [])))
        return dict(response)

    typed: LambdaHandler = handler  # Powertools' decorators are untyped
    return typed


# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
