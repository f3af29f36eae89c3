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

from entrypoints.bootstrap import AppSource, LazyApp
from entrypoints.consumers import ScheduledHandler, scheduled_handler
from entrypoints.messages import sweep_offers
from entrypoints.observability import logger as logger


def make_handler(app: AppSource) -> ScheduledHandler:
    """The offers sweeper Lambda handler, running on the app `app` returns."""
    return scheduled_handler(
        app,
        sweep_offers,
        # Offers already let go stay so; the next run (a minute later) does the rest.
        failed="offers sweep failed",
        failure_metric="OfferSweepsFailed",
        answer=lambda outcome, _: {"released": outcome.count},
    )


# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = make_handler(default_app)
