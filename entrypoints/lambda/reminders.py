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

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.consumers import report
from entrypoints.messages import Fields, failure_fields, run_cadence
from entrypoints.observability import logger, metrics


def make_handler(app: AppSource) -> Callable[[dict[str, Any], Any], dict[str, int]]:
    """The reminders Lambda handler, running on the app `app` returns."""

    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False, clear_state=True
    )
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        """Record the reminders now due; returns how many."""
        fields: Fields = {}
        try:
            outcome = run_cadence(app(), fields)
        except Exception as e:
            # Reminders already recorded stay recorded; the next run (15 min) does the rest.
            logger.error("reminders run failed", extra=failure_fields(e))
            metrics.add_metric(name="ReminderRunsFailed", unit=MetricUnit.Count, value=1)
            raise
        report(outcome, {**fields, "scheduled": event.get("time")})
        return {"recorded": outcome.count, "held_sent": int(fields.get("held_sent", 0))}

    # Powertools' decorators are untyped.
    typed: Callable[[dict[str, Any], Any], dict[str, int]] = handler
    return typed


# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
