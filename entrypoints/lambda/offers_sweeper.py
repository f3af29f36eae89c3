"""Lambda handler of the waitlist offers sweeper: an EventBridge schedule (every minute).

Each run lets go, in every clinic, of the waitlist offers whose hold has run out
(`Clinic.sweep_offers`): each release frees the held slot and commits a `WaitlistOfferExpired`
in the same write, which the outbox relay publishes and the events consumer offers on to the
next fitting entry. A release is a conditional write on the entry's version, so overlapping
or repeated runs, and a patient accepting or declining at that very moment, end an offer
exactly once. A failed run is not retried: the next one, a minute later, does the same work
(lambda.tf). Logs carry counts only.

Handler string: `entrypoints.lambda.offers_sweeper.handler`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.consumers import report
from entrypoints.messages import Fields, failure_fields, sweep_offers
from entrypoints.observability import logger, metrics


def make_handler(app: AppSource) -> Callable[[dict[str, Any], Any], dict[str, int]]:
    """The offers sweeper Lambda handler, running on the app `app` returns."""

    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False, clear_state=True
    )
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        """Let go of the offers whose hold ran out; returns how many."""
        fields: Fields = {}
        try:
            outcome = sweep_offers(app(), fields)
        except Exception as e:
            # Offers already let go stay so; the next run (a minute later) does the rest.
            logger.error("offers sweep failed", extra=failure_fields(e))
            metrics.add_metric(name="OfferSweepsFailed", unit=MetricUnit.Count, value=1)
            raise
        report(outcome, {**fields, "scheduled": event.get("time")})
        return {"released": outcome.count}

    # Powertools' decorators are untyped.
    typed: Callable[[dict[str, Any], Any], dict[str, int]] = handler
    return typed


# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
