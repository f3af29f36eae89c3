"""The Lambdas' world in one process: DynamoDB Local for the table, moto for SQS and SNS.

Events reach the handlers in the shapes AWS sends: stream records are read from DynamoDB
Local's own stream of the table, SQS records are messages really received from moto's FIFO
queues (and deleted, or left to be redelivered, as Lambda's event source mapping does), and
the schedule is EventBridge's "Scheduled Event".
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from adapters.aws.resources import ResourceNames, provision
from adapters.system import FixedClock
from domain.commands import RegisterDoctor
from domain.use_cases import Clinic
from entrypoints.bootstrap import App, build_app
from entrypoints.config import Settings
from entrypoints.context import LocalContext
from tests.integration.aws_world import NOW, REGION, WEEKDAY_HOURS
from tests.support.apps import AppSlot
from tests.support.logs import service_logs as service_logs

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodbstreams.client import DynamoDBStreamsClient
    from mypy_boto3_sqs.client import SQSClient

Handler = Callable[[dict[str, Any], Any], Any]
COUNTRIES = ("PE", "CL")


# What Lambda passes as `context`: the one local stand-in, enough for Powertools.
FakeContext = LocalContext
# The app of the running stack: every handler made by `lambda_function` runs on it.
STACK_APP = AppSlot()


class LambdaFunction:
    """A Lambda module's handler, made to run on the stack's app, and the module's logger."""

    def __init__(self, name: str) -> None:
        module = importlib.import_module(f"entrypoints.lambda.{name}")
        self.handler: Handler = module.make_handler(STACK_APP)
        self.logger = module.logger


class TableStream:
    """The table's DynamoDB Stream, read on from where the last read stopped."""

    def __init__(self, client: DynamoDBStreamsClient, stream_arn: str) -> None:
        self.client = client
        self.arn = stream_arn
        self._iterators: dict[str, str] = {}

    def read(self) -> list[dict[str, Any]]:
        """The records written since the last read, each as Lambda hands it to a function."""
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator: str | None = (
                self._iterators.get(shard_id)
                or self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            while iterator:
                page = self.client.get_records(ShardIterator=iterator)
                self._iterators[shard_id] = iterator = page.get("NextShardIterator") or ""
                records.extend(self._as_lambda_record(r) for r in page["Records"])
                if not page["Records"]:
                    break
        return records

    def _as_lambda_record(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        stream = dict(raw["dynamodb"])
        created = stream.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            # Lambda sends epoch seconds where the Streams API gives boto3 a timestamp.
            stream["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": raw["eventID"],
            "eventName": raw["eventName"],
            "eventVersion": raw.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": stream,
            "eventSourceARN": self.arn,
        }


def outbox_inserts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the relay's event filter (lambda.tf) lets through: INSERTs of `OUTBOX#` keys."""
    return [
        r
        for r in records
        if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["pk"]["S"].startswith("OUTBOX#")
    ]


def stream_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A DynamoDB Streams invocation event."""
    return {"Records": records}


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The SQS invocation event Lambda builds from messages it received."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m["Attributes"]),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def scheduled_event(at: datetime) -> dict[str, Any]:
    """EventBridge's event for a `rate(15 minutes)` rule firing at `at`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/citas-test-reminders"],
        "detail": {},
    }


class QueueTrigger:
    """Lambda's SQS event source mapping: receive, invoke, delete what did not fail.

    A reported failure is left in the queue; its visibility is reset at once instead of
    after the visibility timeout, so a test sees the redelivery without waiting.
    """

    def __init__(self, sqs: SQSClient, url: str, handler: Handler, batch_size: int = 10) -> None:
        self.sqs = sqs
        self.url = url
        self.handler = handler
        self.batch_size = batch_size
        self.arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.responses: list[dict[str, Any]] = []

    def receive(self) -> list[dict[str, Any]]:
        """One ReceiveMessage as the event source mapping makes it."""
        answer = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=self.batch_size,
            MessageSystemAttributeNames=["All"],
        )
        return [dict(m) for m in answer.get("Messages", [])]

    def deliver(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Invoke the handler with `messages`, then delete the ones it did not report."""
        response: dict[str, Any] = self.handler(sqs_event(messages, self.arn), FakeContext())
        self.responses.append(response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return response

    def poll(self) -> dict[str, Any] | None:
        """One receive and invocation; None when the queue had nothing to deliver."""
        messages = self.receive()
        return self.deliver(messages) if messages else None

    def drain(self, limit: int = 30) -> int:
        """Poll until the queue is empty; returns how many invocations it took."""
        for polls in range(limit):
            if self.poll() is None:
                return polls
        raise AssertionError(f"{self.url} still delivers after {limit} polls")


def peek(sqs: SQSClient, url: str) -> list[dict[str, Any]]:
    """Every message visible in `url`, left visible for the next reader."""
    messages: dict[str, dict[str, Any]] = {}
    while True:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
            VisibilityTimeout=30,
        )
        batch = [m for m in answer.get("Messages", []) if m["MessageId"] not in messages]
        if not batch:
            break
        messages.update((m["MessageId"], dict(m)) for m in batch)
    for message in messages.values():
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return list(messages.values())


class Stack:
    """The table, the queues, SNS and the aws app the handlers run on (`STACK_APP`)."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        streams: DynamoDBStreamsClient,
        sqs: SQSClient,
        names: ResourceNames,
        urls: Mapping[str, str],
        clock: FixedClock,
    ) -> None:
        self.dynamodb = dynamodb
        self.sqs = sqs
        self.names = names
        self.urls = dict(urls)
        self.clock = clock
        arn = dynamodb.describe_table(TableName=names.table)["Table"]["LatestStreamArn"]
        self.stream = TableStream(streams, arn)
        self._app: App | None = None

    @property
    def app(self) -> App:
        """The app the handlers run on."""
        assert self._app is not None
        return self._app

    @app.setter
    def app(self, app: App) -> None:
        self._app = STACK_APP.app = app

    @property
    def table(self) -> str:
        return self.names.table

    @property
    def events_url(self) -> str:
        return self.urls[self.names.events_queue]

    @property
    def events_dlq_url(self) -> str:
        return self.urls[self.names.events_dlq]

    def booking_url(self, country: str) -> str:
        return self.urls[self.names.booking_queues[country]]

    def booking_dlq_url(self, country: str) -> str:
        return self.urls[self.names.booking_dlqs[country]]

    @property
    def clinic(self) -> Clinic:
        return self.app.for_clinic("demo")

    def rebuild(self, overrides: Mapping[Any, Any] | None = None) -> App:
        """A fresh app (as after a cold start) with some ports replaced; returns it."""
        self.app = build_app(Settings.from_env(), clock=self.clock, overrides=overrides)
        return self.app

    def sms(self) -> list[tuple[str, str]]:
        """Every SMS sent through moto's SNS, oldest first: (phone, text)."""
        backend = sns_backends[DEFAULT_ACCOUNT_ID][REGION]
        return [(phone, text) for phone, text in backend.sms_messages.values()]

    def register_doctors(self) -> None:
        """Two Lima doctors and one in Santiago, weekdays; one more in Santiago, weekends too."""
        for doctor_id, name, country in (
            ("rosa", "Dra. Rosa Quispe", "PE"),
            ("ana", "Dra. Ana Huamán", "PE"),
            ("matias", "Dr. Matías Soto", "CL"),
        ):
            self.clinic.register_doctor(
                RegisterDoctor(doctor_id, name, country, WEEKDAY_HOURS, slot_minutes=30)
            )
        every_day = {d: [["08:00", "20:00"]] for d in ("sat", "sun", "mon")}
        self.clinic.register_doctor(
            RegisterDoctor("vera", "Dra. Vera Rojas", "CL", every_day, slot_minutes=30)
        )


@contextmanager
def aws_stack(
    endpoint_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    now: datetime = NOW,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """A fresh table on DynamoDB Local and fresh moto queues, wired as on AWS by environment."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # The adapters build their own clients from the environment, as in Lambda; moto answers
    # SQS and SNS, and DynamoDB calls go past it to DynamoDB Local.
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint_url)
    with mock_aws():
        # Inside mock_aws the credentials are moto's; DynamoDB Local keeps one database per
        # access key, so the test's clients and the adapters' must share them.
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        streams = boto3.client("dynamodbstreams", endpoint_url=endpoint_url, region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        names = ResourceNames.for_environment("citas", f"t{uuid.uuid4().hex[:10]}", COUNTRIES)
        urls = provision(dynamodb, sqs, names)
        env = {
            "CITAS_BACKEND": "aws",
            "CITAS_TABLE_NAME": names.table,
            "CITAS_EVENTS_QUEUE_URL": urls[names.events_queue],
            "CITAS_BOOKING_QUEUE_URLS": ",".join(
                f"{c}={urls[names.booking_queues[c]]}" for c in COUNTRIES
            ),
            "CITAS_NOTIFIER": "sns",
            **(extra_env or {}),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        clock = FixedClock(now.astimezone(UTC))
        stack = Stack(dynamodb, streams, sqs, names, urls, clock)
        stack.rebuild()
        try:
            stack.register_doctors()
            yield stack
        finally:
            STACK_APP.app = None


def log_records(stream: io.StringIO) -> list[dict[str, Any]]:
    """The JSON objects a `service_logs` stream holds, one per line."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def envelope_bodies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON envelopes of received messages."""
    return [json.loads(m["Body"]) for m in messages]
