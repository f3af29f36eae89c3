"""Lambda handler of a country's booking worker: SQS FIFO records of queued booking requests.

A message carries the whole request (`BookingRequest.to_message`): the request is queued
before it is stored, so a request whose store failed is stored here from the message. Old
messages carry `{"request_id": ...}` only, and are still accepted. Bodies are never logged.

One function per country runs this same code on its country's queue (`MessageGroupId` =
doctor id, so each doctor's requests are booked in the order they came). Each request is
booked or rejected by `Clinic.handle_booking_request` (`entrypoints.messages.book_request`),
which is safe to run twice: a request that is no longer pending is skipped, and the request id
is the booking's idempotency key.

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

from entrypoints.bootstrap import App, AppSource, LazyApp
from entrypoints.consumers import LambdaHandler, sqs_fifo_handler
from entrypoints.messages import Fields, Outcome, book_request
from entrypoints.observability import logger as logger


def book(app: App, body: str | None, fields: Fields) -> Outcome:
    """Book or reject the request of one message, as this function's country's worker."""
    return book_request(app, body, fields, country=app.settings.worker_country)


def make_handler(app: AppSource) -> LambdaHandler:
    """The worker's Lambda handler, running on the app `app` returns."""
    return sqs_fifo_handler(app, book, failure_metric="BookingFailures", group_field="doctor_id")


# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
