"""The Powertools side of the queue and stream consumer Lambdas: batches, failure logs, metrics.

A message handler (`entrypoints.messages`) decides what a record means; this module runs it
per record of a batch, logs and counts its outcome, and reports a record that fails in
`batchItemFailures`, so it comes back later: SQS redelivers it until `maxReceiveCount`, then
moves it to the dead-letter queue; a stream retries it in order.
Logs about a failure name its type, its error code and where it was raised, never its message:
botocore and SNS messages can quote a phone number or a request body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from domain.errors import TemporarilyUnavailable
from entrypoints.bootstrap import App, AppSource
from entrypoints.messages import Fields, MessageHandler, Outcome, failure_fields, is_poison
from entrypoints.observability import logger, metrics

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
# A scheduled job: the app and its log fields in, what it came to out.
Tick = Callable[[App, Fields], Outcome]
ScheduledHandler = Callable[[dict[str, Any], Any], dict[str, int]]


class SkippedAfterFailure(Exception):
    """Not tried: an earlier record it must follow failed, so it waits for the same retry."""


@contextmanager
def failure_logged(metric: str, fields: Mapping[str, Any]) -> Iterator[None]:
    """Log a record that fails and count it as `metric`, then let it fail to be retried."""
    try:
        yield
    except SkippedAfterFailure:
        raise  # counted in the batch line; one line per skipped record would only be noise
    except Exception as e:
        details = {**fields, **failure_fields(e)}
        if isinstance(e, TemporarilyUnavailable):
            # Expected now and then (throttling, an outage): the retry will most likely work.
            logger.warning("record failed, it will be retried", extra=details)
        else:
            logger.error("record failed, it will be retried or dead-lettered", extra=details)
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        raise


def report(outcome: Outcome, fields: Mapping[str, Any]) -> None:
    """Log what a message came to, and count it."""
    logger.info(outcome.message, extra=dict(fields))
    if outcome.metric is not None:
        metrics.add_metric(name=outcome.metric, unit=MetricUnit.Count, value=outcome.count)


def log_batch(response: Mapping[str, Any], records: int) -> None:
    """One line per batch: how many records came and how many go back for a retry."""
    failed = len(response.get("batchItemFailures", []))
    logger.info("batch processed", extra={"records": records, "failed": failed})


def sqs_fifo_handler(
    app: AppSource,
    handle: MessageHandler,
    *,
    failure_metric: str,
    group_field: str | None = None,
) -> LambdaHandler:
    """A Lambda handler of SQS FIFO batches that hands each record's body to `handle`.

    A record that fails is reported with every later record of its message group (logged as
    `group_field`, if named), so a group's messages never overtake each other, while the
    other groups go on.
    """
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # Answered, not raised, when every record failed: SQS redelivers them either way.
    processor.raise_on_entire_batch_failure = False

    def consume(record: SQSRecord) -> None:
        fields: Fields = {"message_id": record.message_id}
        if group_field is not None:
            fields[group_field] = record.attributes.message_group_id
        fields["receive_count"] = record.attributes.approximate_receive_count
        with failure_logged(failure_metric, fields):
            report(handle(app(), record.body, fields), fields)

    @logger.inject_lambda_context(log_event=False, clear_state=True)
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = process_partial_response(
            event=event, record_handler=consume, processor=processor, context=context
        )
        log_batch(response, len(event.get("Records", [])))
        return dict(response)

    typed: LambdaHandler = handler  # Powertools' decorators are untyped
    return typed


def sns_handler(app: AppSource, handle: MessageHandler, *, failure_metric: str) -> LambdaHandler:
    """A Lambda handler of SNS notifications that hands each record's message to `handle`.

    SNS invokes the function asynchronously, one record at a time: a failure is raised, so
    Lambda tries again (twice) and then hands the event to the function's failure
    destination; a poison record (malformed, not ours) is logged and dropped, since no
    retry can ever handle it.
    """

    @logger.inject_lambda_context(log_event=False, clear_state=True)
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        records = event.get("Records") if isinstance(event, dict) else None
        if not isinstance(records, list):
            logger.error("malformed event", extra={"error_type": "MalformedEvent"})
            return {"handled": 0}
        handled = 0
        for record in records:
            sns = record.get("Sns") if isinstance(record, dict) else None
            message = sns.get("Message") if isinstance(sns, dict) else None
            fields: Fields = {
                "sns_message_id": str(sns.get("MessageId", ""))[:100]
                if isinstance(sns, dict)
                else None
            }
            try:
                with failure_logged(failure_metric, fields):
                    report(
                        handle(app(), message if isinstance(message, str) else None, fields), fields
                    )
            except Exception as e:
                if is_poison(e):
                    continue  # logged by failure_logged; a retry would fail the same way
                raise
            handled += 1
        return {"handled": handled}

    typed: LambdaHandler = handler  # Powertools' decorators are untyped
    return typed


def scheduled_handler(
    app: AppSource,
    tick: Tick,
    *,
    failed: str,
    failure_metric: str,
    answer: Callable[[Outcome, Fields], dict[str, int]],
) -> ScheduledHandler:
    """A Lambda handler of an EventBridge schedule: runs `tick` once, answers `answer(...)`.

    A failed run is logged (type, code, origin) and counted as `failure_metric`, then raised;
    it is not retried (lambda.tf): the schedule's next run does the work this one left, and
    what this one committed stays committed.
    """

    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False, clear_state=True
    )
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        fields: Fields = {}
        try:
            outcome = tick(app(), fields)
        except Exception as e:
            logger.error(failed, extra=failure_fields(e))
            metrics.add_metric(name=failure_metric, unit=MetricUnit.Count, value=1)
            raise
        report(outcome, {**fields, "scheduled": event.get("time")})
        return answer(outcome, fields)

    typed: ScheduledHandler = handler  # Powertools' decorators are untyped
    return typed
