"""What the queue and stream consumer Lambdas share: poison detection and safe failure logs.

A record that fails is reported in `batchItemFailures` and comes back later: SQS redelivers it
until `maxReceiveCount`, then moves it to the dead-letter queue; a stream retries it in order.
Logs about a failure name its type, its error code and where it was raised, never its message:
botocore and SNS messages can quote a phone number or a request body.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from domain.errors import CitasError, TemporarilyUnavailable


class PoisonMessage(Exception):
    """A record no retry can ever process: malformed, or about something that does not exist."""


class SkippedAfterFailure(Exception):
    """Not tried: an earlier record it must follow failed, so it waits for the same retry."""


def json_object(body: str | None) -> dict[str, Any]:
    """The JSON object a message body holds, or PoisonMessage."""
    try:
        value = json.loads(body or "")
    except ValueError as e:
        raise PoisonMessage("the message body is not JSON") from e
    if not isinstance(value, dict):
        raise PoisonMessage("the message body is not a JSON object")
    return value


def failure_fields(error: BaseException) -> dict[str, Any]:
    """What a log may say about a failure: type, error code and origin, never the message."""
    fields: dict[str, Any] = {"error_type": type(error).__name__}
    if isinstance(error, CitasError):
        fields["error_code"] = error.code
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        fields["raised_at"] = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"
    cause = error.__cause__
    if cause is not None:
        fields["cause_type"] = type(cause).__name__
    return fields


@contextmanager
def failure_logged(
    logger: Logger, metrics: Metrics, metric: str, fields: Mapping[str, Any]
) -> Iterator[None]:
    """Log a record that fails and count it as `metric`, then let it fail to be retried."""
    try:
        yield
    except SkippedAfterFailure:
        raise  # counted in the batch line; one line per skipped record would only be noise
    except Exception as e:
        details = {**fields, **failure_fields(e)}
        if isinstance(e, TemporarilyUnavailable):
            # Expected now and then (throttling, an outage): the retry will most likely work.
            logger.warning("record failed, it will be retried", extra=details)
        else:
            logger.error("record failed, it will be retried or dead-lettered", extra=details)
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        raise


def log_batch(logger: Logger, response: Mapping[str, Any], records: int) -> None:
    """One line per batch: how many records came and how many go back for a retry."""
    failed = len(response.get("batchItemFailures", []))
    logger.info("batch processed", extra={"records": records, "failed": failed})
