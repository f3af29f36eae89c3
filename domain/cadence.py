"""The confirmation cadence: which message an appointment is due, and when it may go out.

Patients are asked, not told. On booking they are asked to confirm (the `AppointmentRequested`
message); 48 hours before, a still unconfirmed appointment asks again; 24 hours before, one
still unconfirmed is *at risk* (staff should call) and its reminder goes on every channel;
confirmed appointments get a reminder 24 hours and 2 hours before.

Each step fires once per start time (a reschedule starts the cadence again), only for an
appointment set before the step's mark (one booked 10 hours ahead was just asked). A step is
recorded at its mark, so an appointment is at risk 24 hours before whatever the hour; its
message keeps quiet hours like every other (`send_time`: between 21:00 and 08:00 in the
doctor's zone it waits for 08:00, unless the visit starts before that, then it goes at once;
the messenger holds it). A step whose mark has passed by more than the grace (a scheduler
outage) is dropped rather than recorded late, except the at-risk one, which staff rely on
until the start; and any step is dropped once a later one is due: a patient gets the freshest
message, never two at once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

import attrs
from attrs import frozen

if TYPE_CHECKING:
    from domain.appointment import Status

QUIET_START: Final = time(21, 0)
QUIET_END: Final = time(8, 0)
# How late a missed step may still go out (the tick runs every 15 minutes).
GRACE: Final = timedelta(hours=6)


class Step(enum.StrEnum):
    """One message of the cadence."""

    ASK_48H = "ask_48h"
    AT_RISK_24H = "at_risk_24h"
    REMIND_24H = "remind_24h"
    REMIND_2H = "remind_2h"


@frozen
class StepRule:
    """A step: how long before the start, and the status it is for."""

    step: Step
    lead: timedelta
    status: str


RULES: Final = (
    StepRule(Step.ASK_48H, timedelta(hours=48), "requested"),
    StepRule(Step.AT_RISK_24H, timedelta(hours=24), "requested"),
    StepRule(Step.REMIND_24H, timedelta(hours=24), "confirmed"),
    StepRule(Step.REMIND_2H, timedelta(hours=2), "confirmed"),
)
# The longest lead: how far ahead the tick has to look.
HORIZON: Final = max(r.lead for r in RULES)


@attrs.define
class _QuietHours:
    on: bool = True


# On everywhere, unless a local server is started with CITAS_QUIET_HOURS=off (a demo, or the
# end-to-end tests, which run at any hour): then nothing waits for 08:00 in that process.
_QUIET_HOURS = _QuietHours()


def set_quiet_hours(on: bool) -> None:
    """Keep quiet hours (the default) or not, for this whole process (`citas serve` only)."""
    _QUIET_HOURS.on = on


def in_quiet_hours(instant: datetime, time_zone: str) -> bool:
    """Whether `instant` is between 21:00 and 08:00 on the wall clock of `time_zone`."""
    if not _QUIET_HOURS.on:
        return False
    wall = instant.astimezone(ZoneInfo(time_zone)).time()
    return wall >= QUIET_START or wall < QUIET_END


def quiet_end_after(instant: datetime, time_zone: str) -> datetime:
    """The first 08:00 of `time_zone` after `instant` (wall time: DST days included)."""
    zone = ZoneInfo(time_zone)
    wall = instant.astimezone(zone)
    day = wall.date() if wall.time() < QUIET_END else wall.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_END, tzinfo=zone)


def send_time(due: datetime, start: datetime, time_zone: str) -> datetime:
    """When a message due at `due` about a visit at `start` may go out (quiet hours applied)."""
    if not in_quiet_hours(due, time_zone):
        return due
    morning = quiet_end_after(due, time_zone)
    # At 08:00 the visit would have begun (or be about to): better now than never.
    return due if start <= morning else morning


@frozen
class Due:
    """A step due now, and its mark (the instant it became due)."""

    step: Step
    at: datetime


def due_step(
    *,
    status: Status | str,
    start: datetime,
    scheduled_at: datetime | None,
    sent: Iterable[Step],
    now: datetime,
) -> Due | None:
    """The one step due at `now` for an appointment in this state, or None.

    `sent` are the steps already recorded for this start time.
    """
    if now >= start:
        return None
    done = set(sent)
    candidates = [
        r
        for r in RULES
        if str(status) == r.status and (scheduled_at is None or scheduled_at <= start - r.lead)
    ]
    # The latest mark already passed wins; the earlier ones are moot (never sent late).
    passed = [r for r in candidates if start - r.lead <= now]
    if not passed:
        return None
    rule = min(passed, key=lambda r: r.lead)
    # One message per mark: the at-risk reminder went out 24 hours before, so a confirmation
    # just after it does not bring a second 24-hour reminder.
    if any(r.lead == rule.lead and r.step in done for r in RULES):
        return None
    mark = start - rule.lead
    # Staff rely on the at-risk flag: it is set however late the tick, until the start.
    late_until = start if rule.step is Step.AT_RISK_24H else min(mark + GRACE, start)
    if not mark <= now < late_until:
        return None
    return Due(rule.step, mark)
