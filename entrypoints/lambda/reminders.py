"""Lambda handler of reminders: an EventBridge schedule (every 15 minutes) in, `ReminderDue` out.

Each run records `ReminderDue` for the active appointments whose 24-hour mark has passed, once
per start time (a conditional write, so overlapping or repeated runs remind nobody twice); the
outbox relay publishes them and the notifications function texts the patients. Missed runs are
caught up within the domain's grace period, so a failed run is not retried (lambda.tf). Logs
carry the count only.

Handler string: `entrypoints.lambda.reminders.handler`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from entrypoints.bootstrap import clinic, get_container
from entrypoints.consumers import failure_fields

SERVICE = "citas"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="citas", service=SERVICE)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False, clear_state=True
)
@metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """The Lambda entry point: record the reminders now due; returns how many."""
    try:
        # The clock, not the event's `time`, decides: a delayed run still uses now.
        reminded = len(clinic(get_container()).send_reminders())
    except Exception as e:
        # Reminders already recorded stay recorded; the next run (15 min) does the rest.
        logger.error("reminders run failed", extra=failure_fields(e))
        metrics.add_metric(name="ReminderRunsFailed", unit=MetricUnit.Count, value=1)
        raise
    logger.info("reminders recorded", extra={"reminded": reminded, "scheduled": event.get("time")})
    metrics.add_metric(name="RemindersDue", unit=MetricUnit.Count, value=reminded)
    return {"reminded": reminded}
