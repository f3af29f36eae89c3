"""Lambda handler of the events queue: SQS FIFO records, each offered on and told to the patient.

Each record is one event envelope (`MessageGroupId` = appointment id, or the waitlist entry's
for its offers). The one consumer of the queue does two things per event
(`entrypoints.messages.on_event`):

- the waitlist refill: time the event freed (a cancellation, a reschedule away, time off
  removed, an offer that ended) is offered to the oldest fitting waiting entry of that doctor
  (`refill_waitlist`). A redelivery offers nothing twice: each offer is a conditional write
  that an entry already offered, or a slot already held or booked, makes fail;
- the patient's message: `PatientMessenger` sends its Spanish message through the `Notifier`
  port (SMS or WhatsApp on AWS) once per event id (`notify_patient`).

A record that fails is reported in `batchItemFailures` with every later record of its group,
so a patient never reads a cancellation before the booking it cancels; other groups go on. A
poison record (not an envelope, an unknown type) fails on every delivery until SQS moves it
to the dead-letter queue. Logs carry event and appointment ids and counts only, never the
text, the phone or the name.

Handler string: `entrypoints.lambda.notifications.handler`.
"""

from __future__ import annotations

from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.consumers import LambdaHandler, sqs_fifo_handler
from entrypoints.messages import on_event
from entrypoints.observability import logger as logger


def make_handler(app: AppSource) -> LambdaHandler:
    """The events-queue Lambda handler (refill, then message), running on the app `app` returns."""
    return sqs_fifo_handler(app, on_event, failure_metric="NotificationFailures")


# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
