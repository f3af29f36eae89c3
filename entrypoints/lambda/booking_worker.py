"""Lambda handler of a country's booking worker: SQS FIFO records of queued booking requests.

A message carries the whole request (`BookingRequest.to_message`): the request is queued
before it is stored, so a request whose store failed is stored here from the message. Old
messages carry `{"request_id": ...}` only, and are still accepted. Bodies are never logged.

One function per country runs this same code on its country's queue (`MessageGroupId` =
doctor id, so each doctor's requests are booked in the order they came). Each request is
booked or rejected by `Clinic.process_booking_request`, which is safe to run twice: a request
that is no longer pending is skipped, and the request id is the booking's idempotency key.

A record that fails is reported in `batchItemFailures` with every later record of its message
group (so a doctor's requests never overtake each other), while other doctors' groups go on.
`TemporarilyUnavailable` is retried; a poison record (not JSON, no request id, an unknown
request without its copy, or, with `CITAS_WORKER_COUNTRY` set, another country's request)
fails on every delivery until SQS moves it to the dead-letter queue after `maxReceiveCount`
receives.
Logs carry request, appointment and doctor ids only.

Handler string: `entrypoints.lambda.booking_worker.handler`.
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from domain.booking_request import BookingRequest, RequestStatus
from domain.errors import NotFound, ValidationError
from entrypoints.bootstrap import clinic, get_container
from entrypoints.config import Settings
from entrypoints.consumers import PoisonMessage, failure_logged, json_object, log_batch

SERVICE = "citas"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="citas", service=SERVICE)
warnings.filterwarnings("ignore", message="No application metrics to publish")
# Only the failed record's doctor waits; the other doctors' requests are booked meanwhile.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# Answered, not raised, when every record failed: SQS redelivers them either way.
processor.raise_on_entire_batch_failure = False


def message_of(body: str | None) -> tuple[str, BookingRequest | None]:
    """The request id a message carries, and the whole queued request; or PoisonMessage.

    An old `{"request_id": ...}` message carries no copy of the request: None.
    """
    raw = json_object(body)
    request_id = raw.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise PoisonMessage("the message has no request_id")
    if set(raw) == {"request_id"}:
        return request_id, None  # queued before messages carried the request
    try:
        return request_id, BookingRequest.from_message(raw)
    except ValidationError as e:
        raise PoisonMessage("the message is not a queued booking request") from e


def book(record: SQSRecord) -> None:
    """Book or reject the record's request, once."""
    fields: dict[str, Any] = {
        "message_id": record.message_id,
        "doctor_id": record.attributes.message_group_id,
        "receive_count": record.attributes.approximate_receive_count,
    }
    with failure_logged(logger, metrics, "BookingFailures", fields):
        request_id, queued = message_of(record.body)
        fields["request_id"] = request_id
        container = get_container()
        the_clinic = clinic(container)
        try:
            request = the_clinic.booking_request(request_id)
        except NotFound:
            if queued is None:
                raise  # poison: an old message about nothing
            request = queued  # queued, then its store failed: the worker stores it
        fields["country"] = request.country
        settings: Settings = container.resolve(Settings)
        if settings.worker_country is not None and request.country != settings.worker_country:
            raise PoisonMessage("the request belongs to another country's worker")
        if request.status is not RequestStatus.PENDING:
            # A redelivery after the outcome was stored: nothing to do twice.
            logger.info(
                "request already processed", extra={**fields, "status": str(request.status)}
            )
            metrics.add_metric(name="RequestsAlreadyProcessed", unit=MetricUnit.Count, value=1)
            return
        outcome = the_clinic.process_booking_request(request_id, queued)
        fields["status"] = str(outcome.status)
        if outcome.appointment_id is not None:
            fields["appointment_id"] = outcome.appointment_id
        if outcome.error is not None:
            fields["error_code"] = outcome.error.get("code")
        logger.info("request processed", extra=fields)
        name = "RequestsBooked" if outcome.status is RequestStatus.BOOKED else "RequestsRejected"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: a batch of booking requests in, the records to retry out."""
    response = process_partial_response(
        event=event, record_handler=book, processor=processor, context=context
    )
    log_batch(logger, response, len(event.get("Records", [])))
    return dict(response)
