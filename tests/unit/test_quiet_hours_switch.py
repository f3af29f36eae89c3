"""CITAS_QUIET_HOURS: a local server may send at any hour (demos, the end-to-end tests)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from domain.cadence import in_quiet_hours, send_time, set_quiet_hours
from entrypoints.local import cli

NIGHT_IN_LIMA = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)  # 22:00 in Lima


@pytest.fixture
def quiet_hours_restored() -> Iterator[None]:
    yield
    set_quiet_hours(True)


@pytest.mark.usefixtures("quiet_hours_restored")
def test_quiet_hours_turned_off_let_a_night_message_go_at_once() -> None:
    visit = NIGHT_IN_LIMA + timedelta(days=3)
    assert in_quiet_hours(NIGHT_IN_LIMA, "America/Lima")
    assert send_time(NIGHT_IN_LIMA, visit, "America/Lima") > NIGHT_IN_LIMA
    set_quiet_hours(False)
    assert not in_quiet_hours(NIGHT_IN_LIMA, "America/Lima")
    assert send_time(NIGHT_IN_LIMA, visit, "America/Lima") == NIGHT_IN_LIMA
    set_quiet_hours(True)
    assert in_quiet_hours(NIGHT_IN_LIMA, "America/Lima")


@pytest.mark.usefixtures("quiet_hours_restored")
def test_the_server_refuses_a_value_that_is_neither_on_nor_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITAS_QUIET_HOURS", "sometimes")
    assert cli.serve("127.0.0.1", 0, "memory") == cli.EXIT_USAGE
    assert "CITAS_QUIET_HOURS must be on or off" in capsys.readouterr().err
    assert in_quiet_hours(NIGHT_IN_LIMA, "America/Lima")
