"""Lambda handler of patient notifications: SQS FIFO records of the events queue.

Each record is one event envelope (`MessageGroupId` = appointment id). `PatientMessenger`
sends the patient its Spanish message through the `Notifier` port (SMS on AWS) once per event
id, so a redelivered event sends nothing twice (`entrypoints.messages.notify_patient`).

A record that fails is reported in `batchItemFailures` with every later record of its
appointment, so a patient never reads a cancellation before the booking it cancels; other
appointments go on. A poison record (not an envelope, an unknown type) fails on every delivery
until SQS moves it to the dead-letter queue. Logs carry event and appointment ids only, never
the text, the phone or the name.

Handler string: `entrypoints.lambda.notifications.handler`.
"""

from __future__ import annotations

from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.consumers import LambdaHandler, sqs_fifo_handler
from entrypoints.messages import notify_patient
from entrypoints.observability import logger as logger


def make_handler(app: AppSource) -> LambdaHandler:
    """The notifications Lambda handler, running on the app `app` returns."""
    return sqs_fifo_handler(app, notify_patient, failure_metric="NotificationFailures")


# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
