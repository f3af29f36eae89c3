"""Freed time reaching the waitlist through the entrypoints a deployment runs.

A cancellation is relayed from the outbox and handed, as the SQS record AWS would send, to the
events queue's one consumer (the notifications Lambda: refill, then message); the offers
sweeper Lambda is invoked with EventBridge's scheduled event; `citas serve`'s runtime drives
the same handlers from its threads. All on the memory backend with a fixed clock.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import pytest

from adapters.aws.clinics import parse_clinic_parameter
from adapters.system import FixedClock
from domain import events as ev
from domain.clinics import ClinicProfile
from domain.commands import BookAppointment, CancelAppointment, JoinWaitlist, RegisterDoctor
from domain.events import Event
from domain.patient import Patient
from domain.waitlist import WaitlistEntry, WaitStatus
from entrypoints.bootstrap import App, build_app
from entrypoints.config import LocalClinic, Settings
from entrypoints.context import LocalContext
from entrypoints.local.runtime import LocalRuntime
from entrypoints.messages import envelope_body
from tests.support.logs import service_logs

notifications = importlib.import_module("entrypoints.lambda.notifications")
sweeper = importlib.import_module("entrypoints.lambda.offers_sweeper")

# Tuesday 2030-01-01 12:00 in Lima; the freed visit is Monday 2030-01-07 09:00 (-05).
NOW = datetime(2030, 1, 1, 17, 0, tzinfo=UTC)
MONDAY = date(2030, 1, 7)
START = datetime(2030, 1, 7, 14, 0, tzinfo=UTC)
HOURS = {d: [["09:00", "13:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
ANA = Patient("Ana Pérez", "+51987654321")
LUIS = Patient("Luis Quispe", "+51911222333")
MARTA = Patient("Marta Rojas", "+51944555666")
ROSA = Patient("Rosa Huamán", "+51977888999")
PHONES = (ANA.phone, LUIS.phone, MARTA.phone, ROSA.phone)
NAMES = ("Ana", "Luis", "Marta", "Rosa")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def make_app(clock: FixedClock, settings: Settings | None = None) -> App:
    """The app of `settings` (memory backend), with Dra. Rosa in every clinic it serves."""
    app = build_app(settings or Settings(notifier="memory"), clock=clock)
    for clinic in app.clinics.all():
        app.for_clinic(clinic.clinic_id).register_doctor(
            RegisterDoctor("dra-rosa", "Dra. Rosa", "PE", HOURS)
        )
    return app


@pytest.fixture
def app(clock: FixedClock) -> App:
    return make_app(clock)


def clinic_id(app: App) -> str:
    return app.clinics.all()[0].clinic_id


def join(app: App, clock: FixedClock, who: Patient, earliest: str | None = None) -> WaitlistEntry:
    """`who` waits for Monday (from `earliest`, if given); a minute later than the last one."""
    clock.advance(timedelta(minutes=1))
    window = clock_time.fromisoformat(earliest) if earliest is not None else None
    command = JoinWaitlist("dra-rosa", who, MONDAY, MONDAY, earliest=window)
    return app.for_clinic(clinic_id(app)).join_waitlist(command)


def entry(app: App, waiting: WaitlistEntry) -> WaitlistEntry:
    return app.for_clinic(clinic_id(app)).waitlist_entry(waiting.waitlist_id)


def book_and_cancel(app: App) -> None:
    """Ana's Monday 09:00 visit, booked and cancelled: its half hour is free again."""
    clinic = app.for_clinic(clinic_id(app))
    booked = clinic.book(BookAppointment("dra-rosa", ANA, START, None))
    clinic.cancel(CancelAppointment(booked.appointment_id))


def relay(app: App) -> list[Event]:
    """Publish what the outbox holds, as the relay does; returns the events published now."""
    assert app.memory is not None
    published = app.memory.publisher.published
    before = len(published)
    LocalRuntime(app).relay()
    return published[before:]


def sqs_record(event: Event) -> dict[str, Any]:
    """The record the events FIFO queue hands its consumer for `event`."""
    body = envelope_body(event)
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1893517200000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1893517200001",
            "SequenceNumber": "18849496460467696128",
            "MessageGroupId": event.group_key,
            "MessageDeduplicationId": event.event_id,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:citas-dev-events.fifo",
        "awsRegion": "us-east-1",
    }


def consume(app: App, events: Sequence[Event]) -> dict[str, Any]:
    """The notifications Lambda on one batch of the events queue."""
    handler = notifications.make_handler(lambda: app)
    response: dict[str, Any] = handler({"Records": [sqs_record(e) for e in events]}, LocalContext())
    return response


def scheduled_event(at: datetime) -> dict[str, Any]:
    """EventBridge's event for the sweeper's `rate(1 minute)` rule firing at `at`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/citas-dev-offers-sweeper"],
        "detail": {},
    }


def sweep(app: App, clock: FixedClock) -> dict[str, Any]:
    """The sweeper Lambda, on its schedule, at the clock's time."""
    handler = sweeper.make_handler(lambda: app)
    response: dict[str, Any] = handler(scheduled_event(clock.now()), LocalContext())
    return response


def assert_no_patient_data(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    for secret in (*PHONES, *NAMES, PHONES[0].removeprefix("+")):
        assert secret not in text, secret
    return [json.loads(line) for line in text.splitlines()]


def offers_made(events: list[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, ev.WaitlistOfferMade)]


# --- the events consumer ------------------------------------------------------------------------


def test_a_relayed_cancellation_offers_the_slot_to_the_oldest_fitting_entry(
    app: App, clock: FixedClock
) -> None:
    late_riser = join(app, clock, ROSA, earliest="11:00")  # the oldest, but 09:00 is too early
    luis = join(app, clock, LUIS)
    marta = join(app, clock, MARTA)
    book_and_cancel(app)
    cancelled = relay(app)
    assert [type(e) for e in cancelled] == [
        ev.AppointmentRequested,
        ev.AppointmentCancelled,
    ]

    with service_logs(notifications.logger) as logs:
        assert consume(app, cancelled) == {"batchItemFailures": []}

    offered = entry(app, luis)
    assert offered.status is WaitStatus.OFFERED and offered.offer is not None
    assert offered.offer.start == START
    assert offered.offer.expires_at - offered.offer.offered_at == timedelta(minutes=30)
    assert entry(app, marta).status is WaitStatus.WAITING
    assert entry(app, late_riser).status is WaitStatus.WAITING
    # The offer committed its event, for the relay and the patient's message.
    (made,) = offers_made(relay(app))
    assert made.data["waitlist_id"] == luis.waitlist_id
    # One line per record, with ids and counts only.
    records = assert_no_patient_data(logs)
    handled = [r for r in records if r["message"] == "event handled"]
    assert [r["event_type"] for r in handled] == ["AppointmentRequested", "AppointmentCancelled"]
    assert [r["offers"] for r in handled] == [0, 1]


def test_a_redelivered_cancellation_makes_no_second_offer(app: App, clock: FixedClock) -> None:
    luis = join(app, clock, LUIS)
    marta = join(app, clock, MARTA)
    book_and_cancel(app)
    cancelled = [e for e in relay(app) if isinstance(e, ev.AppointmentCancelled)]
    assert consume(app, cancelled) == {"batchItemFailures": []}
    first = entry(app, luis)

    # At least once: SQS hands the same event over again, in another batch.
    assert consume(app, cancelled) == {"batchItemFailures": []}
    assert consume(app, cancelled) == {"batchItemFailures": []}

    assert entry(app, luis) == first
    assert entry(app, marta).status is WaitStatus.WAITING
    assert len(offers_made(relay(app))) == 1


def test_an_event_that_frees_nothing_offers_nothing(app: App, clock: FixedClock) -> None:
    luis = join(app, clock, LUIS)
    clinic = app.for_clinic(clinic_id(app))
    clinic.book(BookAppointment("dra-rosa", ANA, START, None))
    assert consume(app, relay(app)) == {"batchItemFailures": []}
    assert entry(app, luis).status is WaitStatus.WAITING


# --- the sweeper --------------------------------------------------------------------------------


def test_the_sweeper_lets_an_expired_offer_go_and_the_next_entry_gets_it(
    app: App, clock: FixedClock
) -> None:
    luis = join(app, clock, LUIS)
    marta = join(app, clock, MARTA)
    book_and_cancel(app)
    consume(app, relay(app))
    relay(app)  # the offer's own event, told to Luis
    held = entry(app, luis).offer
    assert held is not None

    # Still held a minute before it runs out: nothing to let go.
    clock.set(held.expires_at - timedelta(minutes=1))
    assert sweep(app, clock) == {"released": 0}
    assert entry(app, luis).status is WaitStatus.OFFERED

    clock.set(held.expires_at + timedelta(seconds=30))
    with service_logs(sweeper.logger) as logs:
        assert sweep(app, clock) == {"released": 1}
    assert sweep(app, clock) == {"released": 0}  # an overlapping run finds nothing more
    released = entry(app, luis)
    assert released.status is WaitStatus.WAITING and released.offer is None
    assert entry(app, marta).status is WaitStatus.WAITING  # not before its event is relayed

    expired = relay(app)
    assert [type(e) for e in expired] == [ev.WaitlistOfferExpired]
    assert expired[0].data["reason"] == "expired"
    assert consume(app, expired) == {"batchItemFailures": []}

    offered = entry(app, marta)
    assert offered.status is WaitStatus.OFFERED and offered.offer is not None
    assert offered.offer.start == START
    # Luis let that start go: it is never offered to him again.
    assert entry(app, luis).status is WaitStatus.WAITING
    (swept,) = [r for r in assert_no_patient_data(logs) if r["message"] == "offers swept"]
    assert swept["released"] == 1 and swept["correlation_id"]


# --- the hold -----------------------------------------------------------------------------------


def hold_of(app: App, clock: FixedClock) -> timedelta:
    """How long the offer of a freed slot holds it, in `app`."""
    luis = join(app, clock, LUIS)
    book_and_cancel(app)
    consume(app, relay(app))
    offer = entry(app, luis).offer
    assert offer is not None
    return offer.expires_at - offer.offered_at


def test_the_deployments_hold_comes_from_citas_hold_minutes(clock: FixedClock) -> None:
    settings = Settings.from_env({"CITAS_HOLD_MINUTES": "10", "CITAS_NOTIFIER": "memory"})
    assert settings.hold_minutes == 10
    assert hold_of(make_app(clock, settings), clock) == timedelta(minutes=10)


def test_a_clinics_own_hold_wins_over_the_deployments(clock: FixedClock) -> None:
    sol = ClinicProfile("sol", "Clínica Sol", hold_minutes=45)
    settings = Settings(
        notifier="memory", clinics=(LocalClinic(sol, "sol-key-123"),), hold_minutes=10
    )
    assert hold_of(make_app(clock, settings), clock) == timedelta(minutes=45)


def test_without_either_the_hold_is_thirty_minutes(clock: FixedClock) -> None:
    assert Settings.from_env({}).hold_minutes == 30
    assert hold_of(make_app(clock), clock) == timedelta(minutes=30)


@pytest.mark.parametrize("value", ["0", "1441", "-5", "30.5", "30m", "treinta", "\uff11\uff10"])
def test_a_bad_citas_hold_minutes_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ValueError, match="CITAS_HOLD_MINUTES must be a whole number of minutes"):
        Settings.from_env({"CITAS_HOLD_MINUTES": value})


@pytest.mark.parametrize("value", ["0", "-1", "3601", "nan", "soon"])
def test_a_bad_citas_sweep_seconds_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ValueError, match="CITAS_SWEEP_SECONDS"):
        Settings.from_env({"CITAS_SWEEP_SECONDS": value})
    assert Settings.from_env({"CITAS_SWEEP_SECONDS": "0.5"}).sweep_seconds == 0.5
    assert Settings.from_env({}).sweep_seconds == 15.0


def test_a_clinic_parameter_names_its_own_hold_or_none() -> None:
    written = {"clinic_id": "sol", "name": "Clínica Sol", "api_key_id": "k1"}
    profile, _ = parse_clinic_parameter("/citas/clinics/sol", json.dumps(written))
    assert profile.hold_minutes is None
    own = {**written, "hold_minutes": 45}
    profile, _ = parse_clinic_parameter("/citas/clinics/sol", json.dumps(own))
    assert profile.hold_minutes == 45
    for bad in (0, 1441, 2.5, "45", True):
        with pytest.raises(ValueError, match="hold_minutes"):
            parse_clinic_parameter(
                "/citas/clinics/sol", json.dumps({**written, "hold_minutes": bad})
            )


# --- citas serve --------------------------------------------------------------------------------


def wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the background threads never got there"
        time.sleep(0.02)


def test_the_local_runtime_refills_and_sweeps_with_the_same_handlers(clock: FixedClock) -> None:
    app = make_app(clock, Settings(notifier="memory", sweep_seconds=0.05))
    luis = join(app, clock, LUIS)
    marta = join(app, clock, MARTA)
    runtime = LocalRuntime(app, relay_interval=0.02)
    runtime.start()
    try:
        book_and_cancel(app)
        # The relay thread publishes the cancellation; the events handler offers its slot.
        wait_for(lambda: entry(app, luis).status is WaitStatus.OFFERED)
        held = entry(app, luis).offer
        assert held is not None
        clock.set(held.expires_at + timedelta(seconds=1))
        # The sweep thread lets it go; its event, relayed, offers the slot to Marta.
        wait_for(lambda: entry(app, marta).status is WaitStatus.OFFERED)
        assert entry(app, luis).status is WaitStatus.WAITING
    finally:
        runtime.stop()
    assert not runtime.running


def test_one_clinics_failing_sweep_leaves_the_others_swept(clock: FixedClock) -> None:
    clinics = tuple(
        LocalClinic(ClinicProfile(c, f"Clínica {c.title()}"), f"{c}-key-123")
        for c in ("sol", "luna")
    )
    app = make_app(clock, Settings(notifier="memory", clinics=clinics))
    first, last = (c.clinic_id for c in app.clinics.all())
    for clinic in (first, last):
        use_cases = app.for_clinic(clinic)
        booked = use_cases.book(BookAppointment("dra-rosa", ANA, START))
        use_cases.join_waitlist(JoinWaitlist("dra-rosa", LUIS, MONDAY, MONDAY))
        use_cases.cancel(CancelAppointment(booked.appointment_id))
        assert len(use_cases.refill("dra-rosa", START, START + timedelta(minutes=30))) == 1
    clock.advance(timedelta(minutes=31))

    def broken() -> list[WaitlistEntry]:
        raise RuntimeError("this clinic's storage is broken")

    # The clinic swept first fails: the one after it must still be swept.
    app.for_clinic(first).sweep_offers = broken  # type: ignore[method-assign]
    with service_logs(sweeper.logger) as logs, pytest.raises(RuntimeError):
        sweep(app, clock)
    waitlist = app.for_clinic(last).ports.waitlist
    assert waitlist is not None and waitlist.offered() == []
    assert [r["message"] for r in assert_no_patient_data(logs)] == ["offers sweep failed"]
