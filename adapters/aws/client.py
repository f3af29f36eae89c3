"""What every AWS adapter shares: the client config, the lazy client, errors and retrying.

Each adapter module only does its own I/O; how a client is built, which AWS answers mean
"try again later", how they reach the caller (`TemporarilyUnavailable`) and how often and how
long the adapter itself retries are written once, here.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final, Generic, TypeVar

import attrs
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from domain.errors import TemporarilyUnavailable

C = TypeVar("C")

# A Lambda behind API Gateway has 29 s; a few quick retries then a 503 beat a long stall.
CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=50,
)

# Error codes that mean "try again later", never "your request is wrong".
RETRYABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
        "TransactionInProgressException",
        "LimitExceededException",
        "KMS.ThrottlingException",
        "KmsThrottled",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)
CONDITION_FAILED: Final = "ConditionalCheckFailedException"


class LazyClient(Generic[C]):
    """A boto3 client built on first use, once, even when threads race for it."""

    def __init__(self, client: C | None, factory: Callable[[], C]) -> None:
        self._client = client
        self._factory = factory
        self._lock = threading.Lock()

    def __call__(self) -> C:
        """The client, built now if this is the first use."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client


def lazy(client: C | LazyClient[C] | None, factory: Callable[[], C]) -> LazyClient[C]:
    """`client` as a LazyClient: a shared one as is, a plain (or no) client wrapped."""
    return client if isinstance(client, LazyClient) else LazyClient(client, factory)


# --- errors --------------------------------------------------------------------------------


def error_code(error: ClientError) -> str:
    """The AWS error code of a botocore ClientError."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_retryable(error: ClientError) -> bool:
    """Whether AWS says the call may succeed later (throttled, conflicting or a 5xx)."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(error) in RETRYABLE_CODES or int(status or 0) >= 500


def is_condition_failure(error: ClientError) -> bool:
    """Whether a single-item write was refused by its ConditionExpression."""
    return error_code(error) == CONDITION_FAILED


@contextlib.contextmanager
def translate_errors(service: str) -> Iterator[None]:
    """Turn throttling, outages and timeouts of `service` into TemporarilyUnavailable."""
    try:
        yield
    except ClientError as e:
        if is_retryable(e):
            raise TemporarilyUnavailable(
                f"{service} is busy or unavailable, retry shortly", service=service
            ) from e
        raise
    except (BotoConnectionError, HTTPClientError) as e:
        # Connection refused, connect or read timeout, connection reset: the outcome of a
        # write may be unknown, but each write is one all-or-nothing step.
        raise TemporarilyUnavailable(
            f"{service} did not answer, retry shortly", service=service
        ) from e


# --- retrying ------------------------------------------------------------------------------


@attrs.frozen
class RetryPolicy:
    """How often the adapter itself tries a step AWS deferred, and the pauses in between.

    botocore already retries throttling and 5xx per call; this is for answers that are a
    success on the wire but leave work undone (a transaction cancelled by contention,
    unprocessed batch items). Pauses grow exponentially from `base_delay` and are jittered
    (x0.5 to x1.5) so that contenders do not collide again in lockstep.
    """

    attempts: int
    base_delay: float
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, eq=False, repr=False)

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (0 is the first)."""
        return self.base_delay * 2.0**attempt * random.uniform(0.5, 1.5)

    def __iter__(self) -> Iterator[int]:
        """Attempt numbers 0 .. attempts-1, pausing before every one but the first."""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.delay(attempt - 1))
            yield attempt

    def is_last(self, attempt: int) -> bool:
        """Whether `attempt` is the final one."""
        return attempt >= self.attempts - 1


# A cancelled transaction wrote nothing and a conflict clears within milliseconds. Bookings of
# one doctor's (or patient's) day share its guard item, so they conflict even at different
# times: five attempts (pauses of about 10, 20, 40 and 80 ms) before a 503. Unprocessed batch
# items are DynamoDB shedding load and get as many.
TRANSACTION_RETRY: Final = RetryPolicy(attempts=5, base_delay=0.01)
BATCH_RETRY: Final = RetryPolicy(attempts=5, base_delay=0.01)
