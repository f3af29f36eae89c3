"""The fault matrix at the HTTP edge: every AWS call of every route, broken in turn.

The whole aws stack runs in process: the Lambda handler, the composition root
(`build_app` with backend `aws`), the DynamoDB adapters on a fresh DynamoDB Local table
provisioned from `adapters.aws.resources`, and the SQS adapter on a moto server. The DynamoDB
and SQS clients carry a `Breaker` (see `tests.integration.faults`) and make one attempt per
call, so each injected fault reaches the adapters exactly once.

For each route, the calls it makes on a healthy run are recorded (and pinned in `ROUTES`);
then each of those calls is failed in turn with throttling, a 503, a 500 and a read timeout.
The contract asks for a `503` with `Retry-After` and the `temporarily_unavailable` body, no
500 and no stack trace, nothing half-written (a dump of the whole table before and after), no
committed change without its outbox event, and a retry that succeeds.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from adapters.aws import bootstrap as aws_bootstrap
from adapters.aws.dynamodb import CLIENT_CONFIG
from adapters.system import FixedClock, UuidV7Generator
from entrypoints.bootstrap import build_app
from entrypoints.config import Settings
from tests.integration.aws_world import NOW, REGION, WEEKDAY_HOURS, all_items, fresh_table
from tests.integration.faults import FAULTS, Breaker, answer_once, read_timeout
from tests.support.apps import AppSlot
from tests.support.dynamodb_local import DynamoDBLocal
from tests.unit.apigw import Client, Reply

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

pytestmark = [
    pytest.mark.dynamodb_local,
    # Most requests record no metric; Powertools warns about each (http_api silences it too).
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

http_api = importlib.import_module("entrypoints.lambda.http_api")
# Each world's app goes in the slot the handler runs on.
slot = AppSlot()
handler = http_api.make_handler(slot)

# One attempt per call: the injected fault is what the adapters see, deterministically.
ONE_ATTEMPT = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=5)
DUMMY_CREDENTIALS = {"aws_access_key_id": "dummy", "aws_secret_access_key": "dummy"}
WED = "2026-12-02"
THU = "2026-12-03"
FRI = "2026-12-04"
DOCTOR = {"name": "Dra. Rosa Quispe", "country": "PE", "working_hours": WEEKDAY_HOURS}


def patient(n: int) -> dict[str, str]:
    return {"name": f"Paciente {n}", "phone": f"+5198765{n:04d}"}


def booking(hhmm: str, who: int, day: str = WED) -> dict[str, Any]:
    return {"doctor_id": "rosa", "patient": patient(who), "start": f"{day}T{hhmm}:00-05:00"}


@dataclass(frozen=True)
class Route:
    """One request of the API and what a healthy run of it does."""

    name: str
    method: str
    path: str  # `{appointment}` and `{request}` name the world's appointment and request
    status: int
    calls: tuple[str, ...]
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)


ROUTES = {
    route.name: route
    for route in (
        Route("put-doctor", "PUT", "/doctors/ana", 201, ("UpdateItem",), DOCTOR),
        Route("get-doctor", "GET", "/doctors/rosa", 200, ("GetItem",)),
        Route(
            "book",
            "POST",
            "/appointments",
            201,
            # The container knows the doctor: one transaction, the key one of its items.
            ("TransactWriteItems",),
            booking("11:00", who=3),
            {"Idempotency-Key": "clave-http-1"},
        ),
        Route(
            "book-cold",
            "POST",
            "/appointments",
            201,
            # A doctor this container has not booked for yet: its schedule, then the write.
            ("GetItem", "TransactWriteItems"),
            {**booking("11:00", who=5), "doctor_id": "matias", "start": f"{WED}T11:00:00-03:00"},
        ),
        Route(
            "reschedule",
            "PATCH",
            "/appointments/{appointment}",
            200,
            # The appointment, then one transaction (the doctor's schedule is known).
            ("GetItem", "TransactWriteItems"),
            {"start": "2026-12-03T10:00:00-05:00"},
        ),
        Route(
            "confirm",
            "POST",
            "/appointments/{appointment}/status",
            200,
            ("GetItem", "TransactWriteItems"),
            {"status": "confirmed"},
        ),
        Route(
            "cancel",
            "DELETE",
            "/appointments/{appointment}",
            200,
            ("GetItem", "TransactWriteItems"),
        ),
        Route("get-appointment", "GET", "/appointments/{appointment}", 200, ("GetItem",)),
        Route(
            "list-doctor-day",
            "GET",
            "/appointments",
            200,
            ("GetItem", "Query"),
            query={"doctor_id": "rosa", "date": WED, "limit": "1"},
        ),
        Route(
            "list-country-status",
            "GET",
            "/appointments",
            200,
            ("Query",),
            query={"country": "PE", "status": "requested", "limit": "1"},
        ),
        Route(
            "availability",
            "GET",
            "/doctors/rosa/availability",
            200,
            # The schedule (read fresh), the day's appointments, then the waitlist's holds.
            ("GetItem", "Query", "Query"),
            query={"date": WED},
        ),
        Route(
            "put-time-off",
            "PUT",
            "/doctors/rosa/time-off/congreso",
            201,
            # The schedule, the block (new or not), the guards of its days, the transaction.
            ("GetItem", "GetItem", "BatchGetItem", "TransactWriteItems"),
            {"start": f"{THU}T09:00:00-05:00", "end": f"{THU}T13:00:00-05:00"},
        ),
        Route(
            "list-time-off",
            "GET",
            "/doctors/rosa/time-off",
            200,
            ("GetItem", "Query"),
            query={"from": WED, "to": FRI},
        ),
        Route(
            "remove-time-off",
            "DELETE",
            "/doctors/rosa/time-off/feriado-local",
            200,
            ("GetItem", "GetItem", "TransactWriteItems"),
        ),
        Route(
            "request-booking",
            "POST",
            "/appointment-requests",
            202,
            # The country's queue (the whole request; the doctor's country is known), then the
            # pending request.
            ("SendMessage", "PutItem"),
            booking("15:00", who=4),
        ),
        Route("get-request", "GET", "/appointment-requests/{request}", 200, ("GetItem",)),
    )
}
# Every (route, n-th call of an operation) a healthy run makes: the rows of the matrix.
CALLS = [
    (route.name, operation, route.calls[: i + 1].count(operation))
    for route in ROUTES.values()
    for i, operation in enumerate(route.calls)
]


# The world ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    """A moto SQS server on a free port for this module (the booking-request queues)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def booking_queues(sqs_endpoint: str) -> dict[str, str]:
    sqs = _sqs_client(sqs_endpoint)
    return {
        country: sqs.create_queue(
            QueueName=f"citas-http-faults-{country.lower()}.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"},
        )["QueueUrl"]
        for country in ("PE", "CL")
    }


def _sqs_client(endpoint: str, config: Config = ONE_ATTEMPT) -> SQSClient:
    return boto3.client(
        "sqs", endpoint_url=endpoint, region_name=REGION, config=config, **DUMMY_CREDENTIALS
    )


def _dynamodb_client(endpoint: str, config: Config = ONE_ATTEMPT) -> DynamoDBClient:
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=config, **DUMMY_CREDENTIALS
    )


class World:
    """The Lambda handler on the aws backend, the clients it uses (each with the same
    breaker), and a healthy client for read-backs."""

    def __init__(
        self,
        http: Client,
        table: str,
        healthy: DynamoDBClient,
        dynamodb: DynamoDBClient,
        sqs: SQSClient,
        breaker: Breaker,
    ) -> None:
        self.http = http
        self.table = table
        self.healthy = healthy
        self.dynamodb = dynamodb
        self.sqs = sqs
        self.breaker = breaker
        self.ids: dict[str, str] = {}

    def clients(self) -> dict[str, Any]:
        """The service's clients by service name."""
        return {"dynamodb": self.dynamodb, "sqs": self.sqs}

    def call(self, route: Route) -> Reply:
        path = route.path.format(
            appointment=self.ids.get("appointment", ""), request=self.ids.get("request", "")
        )
        return self.http.call(
            route.method,
            path,
            body=route.body,
            headers=dict(route.headers),
            query=dict(route.query),
        )

    def dump(self) -> dict[str, dict[str, Any]]:
        """Every item of the table by key: a test-only consistent Scan."""
        return {f"{i['pk']}|{i['sk']}": i for i in all_items(self.healthy, self.table)}


@pytest.fixture
def make_world(
    dynamodb_local: DynamoDBLocal,
    sqs_endpoint: str,
    booking_queues: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., World]]:
    """Build a world: `dynamodb_config` is the botocore config of the service's client."""
    built: list[tuple[DynamoDBClient, str]] = []

    def make(dynamodb_config: Config = ONE_ATTEMPT) -> World:
        healthy = _dynamodb_client(dynamodb_local.endpoint_url, CLIENT_CONFIG)
        table = fresh_table(healthy)
        built.append((healthy, table))
        breaker = Breaker()
        dynamodb = _dynamodb_client(dynamodb_local.endpoint_url, dynamodb_config)
        sqs = _sqs_client(sqs_endpoint)
        for client, service in ((dynamodb, "dynamodb"), (sqs, "sqs")):
            client.meta.events.register(f"before-call.{service}", breaker.before_call)
        # The composition root as deployed, with these two clients in place of the defaults.
        monkeypatch.setattr(
            aws_bootstrap,
            "register",
            functools.partial(
                aws_bootstrap.register_aws_adapters, dynamodb_client=dynamodb, sqs_client=sqs
            ),
        )
        settings = Settings(backend="aws", table_name=table, booking_queue_urls=booking_queues)
        clock = FixedClock(NOW.astimezone(UTC))
        slot.app = build_app(settings, clock=clock, ids=UuidV7Generator())
        world = World(Client(handler), table, healthy, dynamodb, sqs, breaker)
        _furnish(world)
        return world

    yield make
    slot.app = None
    for healthy, table in built:
        healthy.delete_table(TableName=table)


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


def _furnish(world: World) -> None:
    """Two doctors, one appointment and one pending booking request."""
    http = world.http
    assert http.put("/doctors/rosa", {**DOCTOR, "slot_minutes": 30}).status == 201
    matias = {"name": "Dr. Matías Soto", "country": "CL", "working_hours": WEEKDAY_HOURS}
    assert http.put("/doctors/matias", {**matias, "slot_minutes": 20}).status == 201
    booked = http.post("/appointments", booking("10:00", who=1))
    assert booked.status == 201, booked.text
    world.ids["appointment"] = booked.json["appointment_id"]
    block = {"start": f"{FRI}T09:00:00-05:00", "end": f"{FRI}T10:00:00-05:00"}
    assert http.put("/doctors/rosa/time-off/feriado-local", block).status == 201
    accepted = http.post("/appointment-requests", booking("16:00", who=2))
    assert accepted.status == 202, accepted.text
    world.ids["request"] = accepted.json["request_id"]


# Checks ------------------------------------------------------------------------------------


def assert_temporarily_unavailable(reply: Reply) -> None:
    """The contract's 503: Retry-After in whole seconds, its error body, nothing internal."""
    assert reply.status == 503, (reply.status, reply.text)
    retry_after = reply.header("Retry-After")
    assert retry_after is not None and re.fullmatch(r"[1-9][0-9]*", retry_after), retry_after
    body = reply.json
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "temporarily_unavailable"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    for leak in ("Traceback", "injected", "internal detail", "botocore", "Error:", "aws.invalid"):
        assert leak not in reply.text


def assert_logged_as_a_refusal(caplog: pytest.LogCaptureFixture) -> None:
    """One WARNING "request refused" with status 503; no ERROR line, no stack trace."""
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
    refused = [r for r in caplog.records if r.getMessage() == "request refused"]
    assert [(r.levelno, getattr(r, "status", None)) for r in refused] == [(logging.WARNING, 503)]


def assert_every_change_has_its_event(items: Mapping[str, Mapping[str, Any]]) -> None:
    """Each appointment at version v has exactly the events of versions 1..v in the outbox,
    each rejected booking request its rejection, each block of time off its TimeOffAdded,
    and no event is about nothing."""
    envelopes = [
        json.loads(str(item["envelope"]))
        for key, item in items.items()
        if key.startswith("OUTBOX#")
    ]
    appointments = {
        str(item["appointment_id"]): int(item["version"])
        for key, item in items.items()
        if key.startswith("demo#APPT#")
    }
    for appointment_id, version in appointments.items():
        versions = sorted(
            e["version"]
            for e in envelopes
            if e["appointment_id"] == appointment_id and e["type"] != "ReminderDue"
        )
        assert versions == list(range(1, version + 1)), (appointment_id, versions)
    for key, block in items.items():
        if "|TIMEOFF#" in key:
            added = [e for e in envelopes if e["type"] == "TimeOffAdded"]
            assert any(e["data"]["time_off_id"] == block["time_off_id"] for e in added), key
    for envelope in envelopes:
        if envelope["type"] == "BookingRequestRejected":
            request = items[f"demo#REQ#{envelope['data']['request_id']}|REQ"]
            assert request["status"] == "rejected"
        elif envelope["type"] in ("TimeOffAdded", "TimeOffRemoved"):
            # A schedule change's event carries the version it made, never one not reached.
            doctor = items[f"demo#DOCTOR#{envelope['data']['doctor_id']}|PROFILE"]
            assert envelope["version"] <= int(doctor["schedule_version"]), envelope
        else:
            assert envelope["appointment_id"] in appointments, envelope
    rejected = {
        str(item["request_id"])
        for key, item in items.items()
        if key.startswith("demo#REQ#") and item["status"] == "rejected"
    }
    assert rejected == {
        e["data"]["request_id"] for e in envelopes if e["type"] == "BookingRequestRejected"
    }


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "modified": sorted(k for k in before.keys() & after.keys() if before[k] != after[k]),
    }


# The matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize("route_name", list(ROUTES))
def test_each_route_makes_exactly_the_calls_the_fault_matrix_breaks(
    world: World, route_name: str
) -> None:
    route = ROUTES[route_name]
    calls = world.breaker.record()
    reply = world.call(route)
    assert reply.status == route.status, reply.text
    assert tuple(calls) == route.calls


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize(
    ("route_name", "operation", "nth"),
    CALLS,
    ids=[f"{route}-{operation}#{nth}" for route, operation, nth in CALLS],
)
def test_a_failed_call_answers_503_changes_nothing_and_a_retry_succeeds(
    world: World,
    caplog: pytest.LogCaptureFixture,
    route_name: str,
    operation: str,
    nth: int,
    fault: str,
) -> None:
    route = ROUTES[route_name]
    before = world.dump()
    world.breaker.arm(operation, nth, FAULTS[fault])
    with caplog.at_level(logging.INFO):
        reply = world.call(route)
    assert world.breaker.fired == 1, f"{route_name} no longer calls {operation} #{nth}"
    world.breaker.disarm()
    assert_temporarily_unavailable(reply)
    assert_logged_as_a_refusal(caplog)

    after = world.dump()
    # Nothing half-written. A request that could not be queued is never stored (it is
    # queued first); one queued but not stored is stored by the worker from its message.
    assert after == before, changed(before, after)
    assert_every_change_has_its_event(after)

    retried = world.call(route)
    assert retried.status == route.status, retried.text
    assert_every_change_has_its_event(world.dump())
    if route_name == "book":
        # The same key again: the same appointment, and still only one.
        again = world.call(route)
        assert (again.status, again.json) == (201, retried.json)
        booked = [k for k in world.dump() if k.startswith("demo#APPT#")]
        assert len(booked) == 2  # the world's own appointment and this one


def test_a_request_that_cannot_be_queued_is_answered_503_and_not_left_pending(
    world: World,
) -> None:
    route = ROUTES["request-booking"]
    world.breaker.arm("SendMessage", 1, FAULTS["throttling"])
    reply = world.call(route)
    assert_temporarily_unavailable(reply)
    pending = [
        item
        for key, item in world.dump().items()
        if key.startswith("demo#REQ#") and item["status"] == "pending"
    ]
    # Only the world's own request, which was queued, is pending.
    assert [item["request_id"] for item in pending] == [world.ids["request"]]


class _QueueThenTable:
    """Fails SendMessage, then the TransactWriteItems that would store the rejection."""

    def __init__(self) -> None:
        self.fired: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        if model.name in ("SendMessage", "TransactWriteItems") and model.name not in self.fired:
            self.fired.append(model.name)
            raise FAULTS["service-unavailable"](model.name)


def _queue_and_table_fail_together(world: World) -> Callable[[], bool]:
    breaker = _QueueThenTable()
    for service, client in world.clients().items():
        client.meta.events.register(f"before-call.{service}", breaker)
    # The request is queued before it is stored, so once SendMessage failed nothing is
    # written: the TransactWriteItems that would have stored a rejection is never reached.
    return lambda: breaker.fired == ["SendMessage"]


def _the_answer_to_storing_it_is_lost(world: World) -> Callable[[], bool]:
    lost = Breaker()
    world.dynamodb.meta.events.register("after-call.dynamodb", lost.after_call)
    lost.arm("PutItem", 1, read_timeout)
    return lambda: lost.fired == 1


def _record_what_is_queued(world: World) -> list[str]:
    """The request ids of the SendMessage calls that got past every fault, from now on."""
    queued: list[str] = []

    def record(model: Any, params: Any, **_: Any) -> None:
        if model.name != "SendMessage":
            return
        body = params["body"]
        sent = json.loads(body) if isinstance(body, bytes | str) else body
        queued.append(json.loads(sent["MessageBody"])["request_id"])

    # On the same event as the faults (not a more specific one, which botocore runs first).
    world.sqs.meta.events.register("before-call.sqs", record)
    return queued


@pytest.mark.parametrize(
    "failure",
    [_queue_and_table_fail_together, _the_answer_to_storing_it_is_lost],
    ids=["queue-and-table-fail-together", "answer-to-storing-it-lost"],
)
def test_a_request_that_was_never_queued_is_never_left_pending(
    world: World, failure: Callable[[World], Callable[[], bool]]
) -> None:
    fired = failure(world)
    queued = _record_what_is_queued(world)  # registered last: sees only sends that went out
    reply = world.call(ROUTES["request-booking"])
    assert fired()
    assert_temporarily_unavailable(reply)
    pending = [
        item["request_id"]
        for key, item in world.dump().items()
        if key.startswith("demo#REQ#") and item["status"] == "pending"
    ]
    # Only requests that were queued: the world's own, and one whose store failed after it
    # was queued (its answer lost), which the worker will book from the message.
    assert sorted(pending) == sorted([world.ids["request"], *queued])


# Answers lost on the way back --------------------------------------------------------------


@pytest.mark.parametrize(
    ("route_name", "retry_status"),
    [("book", 201), ("cancel", 200), ("put-doctor", 200)],
)
def test_a_write_whose_answer_was_lost_is_answered_safely_and_retried_without_effect(
    world: World, caplog: pytest.LogCaptureFixture, route_name: str, retry_status: int
) -> None:
    route = ROUTES[route_name]
    lost = Breaker()
    for service, client in world.clients().items():
        client.meta.events.register(f"after-call.{service}", lost.after_call)
    before = world.dump()
    lost.arm(route.calls[-1], 1, read_timeout)
    with caplog.at_level(logging.INFO):
        reply = world.call(route)
    lost.disarm()
    assert lost.fired == 1
    if route_name == "book":
        # The booking's key proves the lost write went through: its stored answer is given
        # at once, the one a retry would get.
        assert reply.status == 201, reply.text
    else:
        assert_temporarily_unavailable(reply)
        assert_logged_as_a_refusal(caplog)
    committed = world.dump()
    assert committed != before  # the write went through, all of it
    assert_every_change_has_its_event(committed)

    retried = world.call(route)
    assert retried.status == retry_status, retried.text
    assert world.dump() == committed  # the retry found the change made: nothing more
    if route_name == "book":
        assert world.call(route).json == retried.json


# botocore's own retries --------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["throttling", "internal-server-error", "read-timeout"])
def test_with_the_default_retries_one_transient_fault_is_absorbed(
    make_world: Callable[..., World], fault: str
) -> None:
    world = make_world(CLIENT_CONFIG)
    route = ROUTES["book"]
    sent: list[str] = []
    world.dynamodb.meta.events.register(
        "before-send.dynamodb.TransactWriteItems", answer_once(fault, sent)
    )
    reply = world.call(route)
    assert reply.status == 201, reply.text
    assert sent == ["TransactWriteItems", "TransactWriteItems"]
    items = world.dump()
    assert len([k for k in items if k.startswith("demo#APPT#")]) == 2
    assert_every_change_has_its_event(items)


def test_a_transaction_resent_after_its_answer_was_lost_books_once(
    make_world: Callable[..., World],
) -> None:
    # botocore resends a TransactWriteItems with the same ClientRequestToken; DynamoDB
    # answers the resend with the first outcome instead of failing its conditions.
    world = make_world(CLIENT_CONFIG)
    resent: list[int] = []

    def lose_the_first_answer(attempts: int, response: Any, **_: Any) -> int | None:
        if attempts == 1 and response is not None and response[0].status_code == 200:
            resent.append(attempts)
            return 0  # retry at once, as after a lost connection
        return None

    world.dynamodb.meta.events.register_first(
        "needs-retry.dynamodb.TransactWriteItems", lose_the_first_answer
    )
    before = world.dump()
    reply = world.call(ROUTES["book"])
    assert resent == [1]
    assert reply.status == 201, reply.text
    diff = changed(before, world.dump())
    assert len([k for k in diff["added"] if k.startswith("demo#APPT#")]) == 1
    assert_every_change_has_its_event(world.dump())


# A long move is one transaction --------------------------------------------------------------


def test_a_long_move_that_fails_changes_nothing_and_then_goes_through(world: World) -> None:
    # The world's 10:00 appointment would stand in the way of the four-hour visit.
    assert world.http.delete(f"/appointments/{world.ids['appointment']}").status == 200
    long_visit = {**booking("09:00", who=5), "duration_minutes": 240}
    booked = world.http.post("/appointments", long_visit)
    assert booked.status == 201, booked.text
    appointment_id = booked.json["appointment_id"]
    before = world.dump()
    world.breaker.arm("TransactWriteItems", 1, FAULTS["service-unavailable"])
    move = {"start": "2026-12-03T09:00:00-05:00"}
    failed = world.http.patch(f"/appointments/{appointment_id}", move)
    world.breaker.disarm()
    assert world.breaker.fired == 1
    # One transaction for the whole move: when it fails, nothing of it is written.
    assert failed.status == 503, failed.text
    assert world.dump() == before
    moved = world.http.patch(f"/appointments/{appointment_id}", move)
    assert moved.status == 200, moved.text
    assert moved.json["start"] == "2026-12-03T09:00:00-05:00"
    assert_every_change_has_its_event(world.dump())
    offered = world.http.get("/doctors/rosa/availability", query={"date": WED}).json["slots"]
    assert f"{WED}T09:00:00-05:00" in [slot["start"] for slot in offered]
    again = world.http.post("/appointments", {**booking("09:00", who=6), "duration_minutes": 60})
    assert again.status == 201, again.text
