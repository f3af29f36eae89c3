"""Lambda handler of the confirmation cadence: an EventBridge schedule (every 15 minutes).

Each run records, once per start time, the cadence step due for each active appointment
(`ConfirmationRequested` 48 hours before, `AppointmentAtRisk` or `ReminderDue` 24 hours before,
`ReminderDue` 2 hours before: domain.cadence), with a conditional write, so overlapping or
repeated runs send nothing twice; the outbox relay publishes them and the notifications
function writes to the patients. It also sends the messages quiet hours held back (21:00 to
08:00 on the doctor's clock) once they are due. Missed runs are caught up within the domain's
grace period, so a failed run is not retried (lambda.tf). Logs carry counts only.

Handler string: `entrypoints.lambda.reminders.handler`.
"""

from __future__ import annotations

from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.consumers import ScheduledHandler, scheduled_handler
from entrypoints.messages import run_cadence
from entrypoints.observability import logger as logger


def make_handler(app: AppSource) -> ScheduledHandler:
    """The reminders Lambda handler, running on the app `app` returns."""
    return scheduled_handler(
        app,
        run_cadence,
        # Reminders already recorded stay recorded; the next run (15 min) does the rest.
        failed="reminders run failed",
        failure_metric="ReminderRunsFailed",
        answer=lambda outcome, fields: {
            "recorded": outcome.count,
            "held_sent": int(fields.get("held_sent", 0)),
        },
    )


# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
