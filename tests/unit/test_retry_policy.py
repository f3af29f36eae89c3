"""The one retry policy every AWS adapter uses for work AWS left undone."""

from __future__ import annotations

import pytest

from adapters.aws.client import BATCH_RETRY, TRANSACTION_RETRY, RetryPolicy


def test_it_tries_the_given_number_of_times_pausing_only_between_attempts() -> None:
    pauses: list[float] = []
    policy = RetryPolicy(attempts=4, base_delay=0.01, sleep=pauses.append)
    assert list(policy) == [0, 1, 2, 3]
    assert len(pauses) == 3  # none before the first attempt, none after the last


def test_pauses_grow_exponentially_within_the_jitter() -> None:
    pauses: list[float] = []
    list(RetryPolicy(attempts=4, base_delay=0.01, sleep=pauses.append))
    for n, pause in enumerate(pauses):
        assert 0.01 * 2**n * 0.5 <= pause <= 0.01 * 2**n * 1.5


@pytest.mark.parametrize(("attempt", "last"), [(0, False), (1, False), (2, True)])
def test_the_last_attempt_is_known(attempt: int, last: bool) -> None:
    assert RetryPolicy(attempts=3, base_delay=0.0).is_last(attempt) is last


def test_the_adapters_keep_their_attempt_counts() -> None:
    assert TRANSACTION_RETRY.attempts == 5
    assert BATCH_RETRY.attempts == 5
