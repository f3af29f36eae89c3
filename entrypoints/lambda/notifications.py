"""Lambda handler of patient notifications: SQS FIFO records of the events queue.

Each record is one event envelope (`MessageGroupId` = appointment id). `PatientMessenger`
sends the patient its Spanish message through the `Notifier` port (SMS on AWS) once per event
id, so a redelivered event sends nothing twice.

A record that fails is reported in `batchItemFailures` with every later record of its
appointment, so a patient never reads a cancellation before the booking it cancels; other
appointments go on. A poison record (not an envelope, an unknown type) fails on every delivery
until SQS moves it to the dead-letter queue. Logs carry event and appointment ids only, never
the text, the phone or the name.

Handler string: `entrypoints.lambda.notifications.handler`.
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from domain.events import Event, event_from_envelope
from domain.use_cases import PatientMessenger
from entrypoints.bootstrap import get_container
from entrypoints.consumers import PoisonMessage, failure_logged, json_object, log_batch

SERVICE = "citas"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="citas", service=SERVICE)
warnings.filterwarnings("ignore", message="No application metrics to publish")
# Only the failed record's appointment waits; other patients are told meanwhile.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# Answered, not raised, when every record failed: SQS redelivers them either way.
processor.raise_on_entire_batch_failure = False


def event_of(body: str | None) -> Event:
    """The event a message carries, or PoisonMessage."""
    envelope = json_object(body)
    try:
        return event_from_envelope(envelope)
    except (KeyError, TypeError, ValueError) as e:
        raise PoisonMessage("the message is not an event envelope") from e


def notify(record: SQSRecord) -> None:
    """Tell the patient what the record's event means for them, once."""
    fields: dict[str, Any] = {
        "message_id": record.message_id,
        "receive_count": record.attributes.approximate_receive_count,
    }
    with failure_logged(logger, metrics, "NotificationFailures", fields):
        event = event_of(record.body)
        fields.update(
            event_id=event.event_id, event_type=event.type, appointment_id=event.appointment_id
        )
        messenger: PatientMessenger = get_container().resolve(PatientMessenger)
        sent = messenger.handle(event)
        logger.info("event handled", extra={**fields, "sent": sent})
        if sent:
            metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: a batch of events in, the records to retry out."""
    response = process_partial_response(
        event=event, record_handler=notify, processor=processor, context=context
    )
    log_batch(logger, response, len(event.get("Records", [])))
    return dict(response)
