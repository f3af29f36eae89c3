"""The Lambda artifact: reproducible, lean, and enough on its own to run every handler.

`scripts/package_lambda.py` builds it twice here; the handlers then run in a fresh
interpreter (`-I -S`: no site-packages, no environment, no working directory) whose path holds
only the unpacked zip and boto3 with its dependencies, which is what the Lambda runtime
provides. Wheels are cached under `.venv-tools/wheels`, so only the first run downloads.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as metadata
import importlib.util
import json
import os
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from adapters.aws.dynamodb import event_to_item
from domain.events import ReminderDue
from tests.unit import apigw

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "package_lambda.py"

OUR_PACKAGES = {"domain", "ports", "adapters", "entrypoints"}
# What the Lambda Python runtime provides (and so the zip must not carry).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
NEVER_PACKAGED = ("tests/", "infra/", "api/", ".venv", "bench/", "scripts/", "hcl2/", "lark/")
HANDLERS = (
    "http_api",
    "outbox_relay",
    "booking_worker",
    "notifications",
    "reminders",
    "offers_sweeper",
    "patient_pages",
    "inbound_sms",
    "inbound_whatsapp",
)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("lambda-package")
    zips = (out / "first" / "lambda.zip", out / "second" / "lambda.zip")
    for target in zips:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--output", str(target)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return zips


@pytest.fixture(scope="module")
def artifact(builds: tuple[Path, Path]) -> Path:
    return builds[0]


def test_two_builds_are_byte_identical(builds: tuple[Path, Path]) -> None:
    first, second = (hashlib.sha256(p.read_bytes()).hexdigest() for p in builds)
    assert first == second


def test_entries_are_sorted_dated_1980_mode_644_without_bytecode(artifact: Path) -> None:
    with zipfile.ZipFile(artifact) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
        assert info.external_attr >> 16 == 0o100644, info.filename
        assert not info.filename.endswith("/"), info.filename
        assert "__pycache__" not in info.filename and not info.filename.endswith(".pyc")
        assert not info.filename.endswith("direct_url.json"), info.filename


def test_it_holds_our_code_and_pinned_dependencies_and_nothing_else(artifact: Path) -> None:
    with zipfile.ZipFile(artifact) as archive:
        names = archive.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops >= OUR_PACKAGES
    assert not any(n.startswith(NEVER_PACKAGED) for n in names), "tests, infra, tools leaked"
    for provided in RUNTIME_PROVIDED:
        assert not any(t == provided or t.startswith(f"{provided}-") for t in tops), provided
        assert f"{provided}.py" not in tops
    # Local-only code: the server and CLI, `citas provision` (python-hcl2) and `citas migrate`
    # (the one module that Scans).
    assert not any(n.startswith("entrypoints/local/") for n in names)
    assert "adapters/aws/resources.py" not in names
    assert "adapters/aws/provision.py" not in names
    assert "adapters/aws/migrate.py" not in names
    assert "adapters/aws/migrate_plan.py" not in names
    # The dependencies, at the versions the tests ran with.
    dists = ("attrs", "holidays", "punq", "aws_lambda_powertools", "typing_extensions")
    for dist in (*dists, "jinja2", "markupsafe"):
        version = metadata.version(dist.replace("_", "-"))
        assert f"{dist}-{version}.dist-info/METADATA" in names, (dist, version)
    assert any(n.startswith("tzdata/zoneinfo/America/Santiago") for n in names)
    # The library's Spanish names, and our adapter over it.
    assert "holidays/locale/es/LC_MESSAGES/PE.mo" in names
    assert "adapters/holidays.py" in names
    # The patient's page (entrypoints/pages.py) loads its templates from next to the module.
    assert "entrypoints/templates/appointment.html" in names


def test_no_packaged_module_imports_local_only_code(artifact: Path) -> None:
    forbidden = ("hcl2", "adapters.aws.resources", "adapters.aws.provision", "entrypoints.local")
    with zipfile.ZipFile(artifact) as archive:
        for name in archive.namelist():
            if name.split("/")[0] not in OUR_PACKAGES or not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(archive.read(name), filename=name)):
                imported: list[str] = []
                if isinstance(node, ast.Import):
                    imported = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    imported = [node.module]
                for module in imported:
                    assert not module.startswith(forbidden), f"{name} imports {module}"


# --- the handlers, on the zip alone ------------------------------------------------------------


def _runtime_libraries(into: Path) -> None:
    """Link boto3 and its dependencies (the Lambda runtime's own) into `into`, nothing else."""
    into.mkdir()
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (into / source.name).symlink_to(source, target_is_directory=source.is_dir())


def _sns_event(message: str) -> dict[str, Any]:
    """What SNS hands a subscribed function: one record (docs.aws.amazon.com/lambda, with-sns)."""
    topic = "arn:aws:sns:us-east-1:123456789012:citas-dev-inbound"
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
                "EventSource": "aws:sns",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic,
                    "Message": message,
                    "Timestamp": "2027-03-01T14:00:00.000Z",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def _sqs_record(body: str, group: str) -> dict[str, Any]:
    message_id = str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": "handle",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1767225600000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1767225600001",
            "SequenceNumber": "18849496460467696128",
            "MessageGroupId": group,
            "MessageDeduplicationId": message_id,
        },
        "messageAttributes": {},
        # SQS's own digest of the body (MD5 is its choice).
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:citas-dev-events.fifo",
        "awsRegion": "us-east-1",
    }


def _stream_record(event_name: str, image: dict[str, Any]) -> dict[str, Any]:
    serializer = TypeSerializer()
    new_image = {k: serializer.serialize(v) for k, v in image.items()}
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1767225600,
            "Keys": {"pk": new_image["pk"], "sk": new_image["sk"]},
            "NewImage": new_image,
            "SequenceNumber": "4000000000000000000001",
            "SizeBytes": 256,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/citas-dev/stream/x",
    }


def _scheduled_event(rule: str) -> dict[str, Any]:
    """What EventBridge hands a function its schedule rule `rule` invokes."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2027-03-01T14:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/citas-dev-{rule}"],
        "detail": {},
    }


def _sample_events() -> dict[str, dict[str, Any]]:
    reminder = ReminderDue(
        event_id=str(uuid.uuid4()),
        clinic_id="demo",
        appointment_id=str(uuid.uuid4()),
        version=1,
        occurred_at=datetime(2027, 3, 1, 14, 0, tzinfo=UTC),
    )
    envelope = json.dumps(reminder.to_envelope())
    return {
        "http_api": apigw.event("GET", f"/appointments/{uuid.uuid4()}"),
        "outbox_relay": {
            "Records": [
                _stream_record("INSERT", event_to_item(reminder)),
                _stream_record("MODIFY", {"pk": "APPT#x", "sk": "APPT", "version": 2}),
            ]
        },
        "booking_worker": {
            "Records": [_sqs_record(json.dumps({"request_id": str(uuid.uuid4())}), "dr-1")]
        },
        "notifications": {
            "Records": [
                _sqs_record(envelope, str(reminder.appointment_id)),
                _sqs_record("not an envelope", "other"),
            ]
        },
        "patient_pages": apigw.event("GET", "/p/not-a-link-of-ours", api_key=None),
        "inbound_sms": _sns_event(
            json.dumps(
                {
                    "originationNumber": "+51987654321",
                    "destinationNumber": "+51900000000",
                    "messageKeyword": "KEYWORD_123456789012",
                    "messageBody": "SI",
                    "inboundMessageId": str(uuid.uuid4()),
                }
            )
        ),
        "inbound_whatsapp": _sns_event("not a whatsapp event"),
        "reminders": _scheduled_event("reminders"),
        "offers_sweeper": _scheduled_event("offers-sweeper"),
    }


_RUNNER = r"""
import importlib, json, sys, zoneinfo
package, libraries, events_file = sys.argv[1:4]
sys.path[:0] = [package, libraries]
# Like the python3.12 runtime (Amazon Linux 2023 minimal): no system time zone database, so
# zone rules must come from the packaged tzdata.
zoneinfo.reset_tzpath(to=[])

class Context:
    function_name = "citas-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:citas-test"
    memory_limit_in_mb = 256
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/citas-test"
    log_stream_name = "test"
    def get_remaining_time_in_millis(self):
        return 30000

events = json.load(open(events_file))
answers = {}
for name, event in events.items():
    module = importlib.import_module("entrypoints.lambda." + name)
    answers[name] = module.handler(event, Context())
zoneinfo.ZoneInfo("America/Santiago")
from adapters.holidays import LibraryHolidayCalendar
peru = LibraryHolidayCalendar().holidays("PE", 2026)
answers["holidays"] = {str(day): name for day, name in peru.items()}
from entrypoints import pages
answers["page"] = pages.render_not_found()
holidays_from = sys.modules["holidays"].__file__
outside = sorted(
    m.__name__ for m in list(sys.modules.values())
    if getattr(m, "__file__", None) and ".venv" in m.__file__
)
found = {"answers": answers, "outside": outside, "holidays_from": holidays_from}
print("ANSWERS " + json.dumps(found, default=str))
"""


@pytest.fixture(scope="module")
def answers(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("lambda-run")
    package = work / "task"
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(package)
    libraries = work / "runtime"
    _runtime_libraries(libraries)
    events_file = work / "events.json"
    events_file.write_text(json.dumps(_sample_events()), encoding="utf-8")
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CITAS_BACKEND": "memory",
        "CITAS_NOTIFIER": "memory",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "citas",
        "POWERTOOLS_METRICS_NAMESPACE": "citas",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _RUNNER, str(package), str(libraries), str(events_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=work,
        env=environment,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("ANSWERS ")]
    assert done.returncode == 0 and lines, done.stdout[-4000:] + done.stderr[-4000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("ANSWERS "))
    assert result["outside"] == [], f"loaded from the project's venv: {result['outside']}"
    assert Path(result["holidays_from"]).is_relative_to(package)
    answered: dict[str, Any] = result["answers"]
    return answered


def test_the_http_api_answers_an_unknown_appointment_with_404(answers: dict[str, Any]) -> None:
    response = answers["http_api"]
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["code"] == "not_found"
    assert response["headers"]["Content-Type"].startswith("application/json")


def test_the_relay_publishes_the_outbox_insert_and_ignores_the_rest(
    answers: dict[str, Any],
) -> None:
    assert answers["outbox_relay"] == {"batchItemFailures": []}


def test_the_booking_worker_fails_an_unknown_request(answers: dict[str, Any]) -> None:
    assert len(answers["booking_worker"]["batchItemFailures"]) == 1


def test_notifications_handle_an_event_and_fail_only_the_poison_message(
    answers: dict[str, Any],
) -> None:
    assert len(answers["notifications"]["batchItemFailures"]) == 1


def test_reminders_run_on_a_schedule_event(answers: dict[str, Any]) -> None:
    assert answers["reminders"] == {"recorded": 0, "held_sent": 0}


def test_the_offers_sweeper_runs_on_a_schedule_event(answers: dict[str, Any]) -> None:
    assert answers["offers_sweeper"] == {"released": 0}


def test_the_pages_answer_a_link_of_nobody_with_the_plain_404_page(answers: dict[str, Any]) -> None:
    response = answers["patient_pages"]
    assert response["statusCode"] == 404
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1" in response["body"]


def test_the_inbound_functions_handle_a_reply_and_drop_a_malformed_one(
    answers: dict[str, Any],
) -> None:
    # One clinic served, named by no number: the SMS is hers, and nothing awaits an answer.
    assert answers["inbound_sms"] == {"handled": 1}
    assert answers["inbound_whatsapp"] == {"handled": 0}


def test_the_holiday_calendar_runs_from_the_zip_on_the_runtime_dateutil(
    answers: dict[str, Any],
) -> None:
    peru = answers["holidays"]
    assert peru["2026-07-28"] == "Día de la Independencia"
    assert peru["2026-07-29"] == "Día de la Gran Parada Militar"
    assert len(peru) == 17


def test_the_patient_page_renders_from_the_zip(answers: dict[str, Any]) -> None:
    assert "Este enlace no es válido." in answers["page"]


def test_every_handler_of_lambda_tf_was_run() -> None:
    assert set(_sample_events()) == set(HANDLERS)
