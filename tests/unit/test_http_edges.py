"""The HTTP API on the memory backend: routing, unexpected errors, logs, metrics and settings."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.system import FixedClock
from entrypoints.bootstrap import build_app
from entrypoints.config import Settings
from tests.unit.apigw import event
from tests.unit.http_world import (
    ANA,
    LIMA_DOCTOR,
    MON,
    SLOT,
    Api,
    booking,
    handler,
    http_api,
)

# Most requests book nothing and so flush no metric; Powertools warns about that, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


# Routing and unexpected errors -----------------------------------------------------------


def test_an_unknown_route_is_404_in_the_error_shape(api: Api) -> None:
    for path in ("/", "/patients", "/doctors", "/doctors/dr-lima/slots"):
        reply = api.get(path)
        assert (reply.status, reply.error_code) == (404, "not_found")


def test_a_known_path_with_another_method_is_405_naming_the_allowed_ones(api: Api) -> None:
    reply = api.call("PUT", "/appointments", body=booking())
    assert (reply.status, reply.error_code) == (405, "method_not_allowed")
    assert reply.header("Allow") == "GET, POST"
    assert api.delete("/doctors/dr-lima").status == 405
    assert api.get("/appointment-requests").status == 405


class _BrokenClock:
    def now(self) -> datetime:
        raise RuntimeError("clock hardware fault")


def test_an_unexpected_error_is_a_bare_500_without_a_stack_trace() -> None:
    SLOT.app = build_app(Settings(), clock=_BrokenClock())
    try:
        api = Api(handler)
        assert api.put("/doctors/dr-lima", LIMA_DOCTOR).status == 201
        reply = api.post("/appointments", booking())
        assert reply.status == 500
        assert reply.json == {
            "error": {"code": "internal_error", "message": "internal error", "details": {}}
        }
        assert "clock hardware fault" not in reply.text
    finally:
        SLOT.app = None


def test_a_malformed_event_is_a_500_in_the_error_shape(container: Any) -> None:
    response = handler({"httpMethod": "GET"}, None)
    assert response["statusCode"] == 500
    assert "Traceback" not in response["body"]
    assert set(json.loads(response["body"])) == {"error"}


def test_the_handler_runs_without_a_lambda_context(api: Api) -> None:
    response = handler(event("GET", "/doctors/dr-lima"), None)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json; charset=utf-8"


# Logs and metrics ------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything the service logger writes, formatted as in Lambda (JSON lines)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(http_api.logger.registered_formatter)
    service_logger = logging.getLogger(http_api.SERVICE)
    service_logger.addHandler(handler)
    yield stream
    service_logger.removeHandler(handler)


def test_a_whole_flow_logs_json_lines_without_any_patient_data(
    log_lines: io.StringIO, capsys: pytest.CaptureFixture[str], clock: FixedClock
) -> None:
    secrets = [ANA["name"], ANA["phone"], ANA["document_id"], "Ana", "987654321", "40404040"]
    broken_clock = _BrokenClock()
    SLOT.app = build_app(Settings(), clock=clock)
    try:
        api = Api(handler)
        api.put("/doctors/dr-lima", LIMA_DOCTOR)
        created = api.post(
            "/appointments", booking(notes="alergia"), headers={"Idempotency-Key": "k"}
        )
        path = f"/appointments/{created.json['appointment_id']}"
        api.post("/appointments", booking(), headers={"Idempotency-Key": "k"})
        api.post(
            "/appointments",
            booking(start=f"{MON}T10:00:00-05:00"),
            headers={"Idempotency-Key": "k"},
        )
        api.post("/appointments", booking())  # slot taken
        api.post("/appointments", booking() | {"patient": {**ANA, "phone": "987654321"}})
        api.post("/appointments", "{" + json.dumps(ANA))  # malformed JSON holding patient data
        api.patch(path, {"start": f"{MON}T11:00:00-05:00"}, headers={"If-Match": "1"})
        api.patch(path, {"start": f"{MON}T11:30:00-05:00"}, headers={"If-Match": "1"})
        api.post(path + "/status", {"status": "confirmed"})
        api.get("/appointments", query={"doctor_id": "dr-lima", "date": MON})
        api.get("/appointments", query={"country": "PE", "status": "confirmed"})
        request = api.post("/appointment-requests", booking(start=f"{MON}T15:00:00-05:00"))
        api.get(f"/appointment-requests/{request.json['request_id']}")
        api.delete(path)
        SLOT.app = build_app(Settings(), clock=broken_clock)
        api.put("/doctors/dr-lima", LIMA_DOCTOR)
        assert api.post("/appointments", booking()).status == 500
    finally:
        SLOT.app = None
    logged = log_lines.getvalue().splitlines()
    printed = capsys.readouterr()
    lines = logged + printed.out.splitlines() + printed.err.splitlines()
    assert len(logged) >= 17
    assert any('"unexpected error"' in line for line in logged)
    for line in logged:
        record = json.loads(line)
        assert isinstance(record, dict)
        assert record["correlation_id"]
    for line in lines:
        for secret in secrets:
            assert secret not in line, line


def test_each_request_is_logged_once_with_route_status_and_ids(
    api: Api, log_lines: io.StringIO, booked: dict[str, Any]
) -> None:
    created = json.loads(log_lines.getvalue().splitlines()[-1])
    assert (created["status"], created["appointment_id"]) == (201, booked["appointment_id"])
    api.post("/appointments", booking())
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert records[-1]["message"] == "request handled"
    assert (records[-1]["route"], records[-1]["status"], records[-1]["error_code"]) == (
        "/appointments",
        409,
        "slot_unavailable",
    )
    lookup = api.get(f"/appointments/{booked['appointment_id']}")
    assert lookup.status == 200
    last = json.loads(log_lines.getvalue().splitlines()[-1])
    assert last["route"] == "/appointments/{appointment_id}"
    assert last["appointment_id"] == booked["appointment_id"]


def test_each_booking_outcome_is_counted_as_an_emf_metric(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    api.post("/appointments", booking())
    api.post("/appointments", booking())
    api.post("/appointment-requests", booking(start=f"{MON}T10:00:00-05:00"))
    api.get("/doctors/dr-lima")  # books nothing, emits nothing, and does not fail
    metrics = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"') and "BookingOutcome" in line
    ]
    outcomes = [(m["operation"], m["outcome"], m["BookingOutcome"]) for m in metrics]
    assert outcomes == [
        ("book", "booked", [1.0]),
        ("book", "slot_unavailable", [1.0]),
        ("request_booking", "accepted", [1.0]),
    ]
    assert all(m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "citas" for m in metrics)


# Configuration ---------------------------------------------------------------------------


def test_settings_default_to_the_local_memory_backend() -> None:
    settings = Settings.from_env({})
    assert settings.backend == "memory"
    assert sorted(settings.countries) == ["CL", "PE"]
    assert (settings.table_name, settings.clinics[0].api_key) == ("citas-local", "local-dev-key")
    assert (settings.events_queue_url, dict(settings.booking_queue_urls)) == (None, {})


def test_settings_read_every_variable() -> None:
    settings = Settings.from_env(
        {
            "CITAS_BACKEND": "aws",
            "CITAS_COUNTRIES": "PE=America/Lima, CO=America/Bogota",
            "CITAS_TABLE_NAME": "citas-prod",
            "CITAS_EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/events.fifo",
            "CITAS_BOOKING_QUEUE_URLS": "PE=http://localhost:9324/1/pe.fifo",
            "CITAS_API_KEY": "s3cret",
        }
    )
    assert settings.backend == "aws"
    assert settings.countries.default_zone("CO") == "America/Bogota"
    assert "CL" not in settings.countries
    assert settings.table_name == "citas-prod"
    assert settings.events_queue_url is not None
    assert dict(settings.booking_queue_urls) == {"PE": "http://localhost:9324/1/pe.fifo"}
    assert settings.clinics[0].api_key == "s3cret"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CITAS_BACKEND", "dynamo"),
        ("CITAS_COUNTRIES", "PE"),
        ("CITAS_COUNTRIES", "PE=America/Lima,PE=America/Lima"),
        ("CITAS_COUNTRIES", "Peru=America/Lima"),
        ("CITAS_COUNTRIES", "PE=America/Atlantis"),
        ("CITAS_TABLE_NAME", "a b"),
        ("CITAS_EVENTS_QUEUE_URL", "events.fifo"),
        ("CITAS_BOOKING_QUEUE_URLS", "PE=http://q/pe.fifo,AR=http://q/ar.fifo"),
        ("CITAS_BOOKING_QUEUE_URLS", "PE"),
    ],
)
def test_a_malformed_setting_is_a_value_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_an_empty_setting_counts_as_unset() -> None:
    assert Settings.from_env({"CITAS_BACKEND": "", "CITAS_API_KEY": " "}) == Settings.from_env({})


def test_time_moves_only_when_the_test_says_so(api: Api, clock: FixedClock) -> None:
    clock.advance(timedelta(days=6))
    reply = api.post("/appointments", booking(start=f"{MON}T15:00:00-05:00"))
    assert reply.json["created_at"] == "2030-01-07T12:00:00-05:00"


def test_importing_the_handler_builds_no_app_and_loads_no_aws_sdk() -> None:
    probe = (
        "import importlib, sys\n"
        "module = importlib.import_module('entrypoints.lambda.http_api')\n"
        "assert not module.default_app.built, 'app built at import'\n"
        # (Powertools itself touches the bare `botocore` package for its user agent.)
        "assert 'boto3' not in sys.modules, 'boto3 imported'\n"
        "from tests.unit.apigw import event\n"
        "assert module.handler(event('GET', '/doctors/x'), None)['statusCode'] == 404\n"
        "assert 'boto3' not in sys.modules, 'the memory backend loaded boto3'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITAS_")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
