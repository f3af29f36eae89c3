"""What `citas serve` prints never names a patient, and every log line is one JSON object."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import requests
import yaml

from tests.unit.apigw import OPENAPI

from .conftest import Api, Launcher, RunningServer

# Distinctive on purpose: none of these can appear in a log by chance.
NAME = "Zacarías Quenteñaupa Wirakocha"
PHONE = "+51977331199"
DOCUMENT = "DNI-70431177"
# Each also in the forms a careless log could use (JSON-escaped, digits only, parts).
SECRETS = (
    NAME,
    json.dumps(NAME)[1:-1],
    "Quenteñaupa",
    "Quente\\u00f1aupa",
    "Wirakocha",
    PHONE,
    PHONE[1:],
    "977331199",
    DOCUMENT,
    "70431177",
)
ZONE = "America/Lima"
ROUTES = {template for template in yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))["paths"]}
# Served by `citas serve` besides the API: the patients' pages and the local inbound number.
LOCAL_ROUTES = {"/p/{token}", "/_local/inbound"}


def _at(day: date, hhmm: str) -> str:
    return datetime.combine(day, clock_time.fromisoformat(hhmm), tzinfo=ZoneInfo(ZONE)).isoformat()


def _full_flow(api: Api) -> None:
    """Every endpoint that carries patient data, including refusals and the async path."""
    day = (datetime.now(ZoneInfo(ZONE)) + timedelta(days=3)).date()
    patient = {"name": NAME, "phone": PHONE, "document_id": DOCUMENT}
    doctor = "dra-logs-1"
    hours = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    put = api.put(
        f"/doctors/{doctor}", json={"name": "Dra. Logs", "country": "PE", "working_hours": hours}
    )
    assert put.status_code == 201, put.text

    def body(start: str, **extra: Any) -> dict[str, Any]:
        return {"doctor_id": doctor, "patient": patient, "start": start, **extra}

    booked = api.post("/appointments", json=body(_at(day, "09:00"), notes="Control anual"))
    assert booked.status_code == 201, booked.text
    path = f"/appointments/{booked.json()['appointment_id']}"
    # Idempotent retry, then refusals whose messages could be tempted to quote the request.
    key = {"Idempotency-Key": "logs-key-1"}
    assert api.post("/appointments", json=body(_at(day, "10:00")), headers=key).status_code == 201
    assert api.post("/appointments", json=body(_at(day, "10:00")), headers=key).status_code == 201
    assert api.post("/appointments", json=body(_at(day, "10:30")), headers=key).status_code == 422
    assert api.post("/appointments", json=body(_at(day, "09:00"))).status_code == 409
    bad_phone = {
        "doctor_id": doctor,
        "patient": {**patient, "phone": PHONE[1:]},
        "start": _at(day, "11:00"),
    }
    assert api.post("/appointments", json=bad_phone).status_code == 400
    assert api.post("/appointments", json=body(_at(day, "09:00")[:19])).status_code == 400
    assert (
        api.post("/appointments", json=body(_at(day, "11:00"), notes=NAME * 1000)).status_code
        == 413
    )
    assert api.post("/appointments", json=body(_at(day, "11:00")), key=None).status_code == 403
    assert api.post("/appointments", data=f'{{"patient": "{NAME}", '.encode()).status_code == 400
    # Query strings could carry a phone number: the access log must drop them.
    listed = api.get(
        "/appointments", params={"doctor_id": doctor, "date": str(day), "phone": PHONE}
    )
    assert listed.status_code == 400
    assert (
        api.get("/appointments", params={"doctor_id": doctor, "date": str(day)}).status_code == 200
    )
    assert api.get(path).status_code == 200
    # Paths can carry anything a client types: the access log names the route, not the path.
    assert api.get(f"/doctors/{PHONE}").status_code == 400
    assert api.get(f"/doctors/{NAME}/availability", params={"date": str(day)}).status_code == 400
    assert api.get(f"/appointments/{PHONE}").status_code == 400
    assert api.get(f"/patients/{PHONE}/{NAME}").status_code == 404
    assert (
        api.post(path + "/status", json={"status": "confirmed", "reason": NAME}).status_code == 200
    )
    assert api.patch(path, json={"start": _at(day, "12:00")}).status_code == 200
    assert api.delete(path).status_code == 200
    accepted = api.post("/appointment-requests", json=body(_at(day, "15:00")))
    assert accepted.status_code == 202, accepted.text
    rejected = api.post("/appointment-requests", json=body(_at(day, "10:00")))
    assert rejected.status_code == 202, rejected.text
    deadline = time.monotonic() + 3
    for request in (accepted, rejected):
        url = f"/appointment-requests/{request.json()['request_id']}"
        while api.get(url).json()["status"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
    # Let the relay hand the last events to the console notifier.
    time.sleep(0.5)


def _patient_answers(api: Api, server: RunningServer) -> None:
    """The patient's side: their page and its forms, and replies by SMS and WhatsApp."""
    day = (datetime.now(ZoneInfo(ZONE)) + timedelta(days=4)).date()
    patient = {"name": NAME, "phone": PHONE, "document_id": DOCUMENT}
    booked = api.post(
        "/appointments",
        json={"doctor_id": "dra-logs-1", "patient": patient, "start": _at(day, "16:00")},
    )
    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["appointment_id"]
    link = ""
    deadline = time.monotonic() + 5
    while not link and time.monotonic() < deadline:
        for line in server.stdout_lines():
            if appointment_id in line and '"notification"' in line:
                link = json.loads(line)["link"]
        time.sleep(0.05)
    assert link, "the booking's message never came"
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and NAME not in page.text and PHONE not in page.text
    for action, form in (("confirmar", {}), ("reprogramar", {"start": "mañana"})):
        answer = requests.post(f"{link}/{action}", data=form, allow_redirects=False, timeout=10)
        assert answer.status_code == 303, answer.text
    tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
    assert requests.get(tampered, timeout=10).status_code == 404
    assert requests.get(link + "x" * 300, timeout=10).status_code == 404
    for message in (
        {"channel": "sms", "from": PHONE, "text": " Sí "},
        {"channel": "whatsapp", "from": PHONE, "text": f"hola, soy {NAME}"},
        {"channel": "sms", "from": PHONE, "text": NAME * 200},
        {"channel": "sms", "from": PHONE, "text": "BAJA"},
        {"channel": "sms", "from": PHONE, "text": "ALTA"},
        {"channel": "whatsapp", "from": PHONE, "button": f"cancelar:{link.rsplit('/', 1)[1]}"},
    ):
        answered = api.post("/_local/inbound", json=message)
        assert answered.status_code == 200, answered.text
    assert api.post("/_local/inbound", json={"channel": "sms", "from": NAME}).status_code == 400
    time.sleep(0.5)


def _check_lines(server: RunningServer) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parsed stdout and stderr lines; fails on patient data or a line that is not JSON."""
    parsed: dict[str, list[dict[str, Any]]] = {"stdout": [], "stderr": []}
    for stream, lines in (("stdout", server.stdout_lines()), ("stderr", server.stderr_lines())):
        for number, line in enumerate(lines, 1):
            for secret in SECRETS:
                assert secret not in line, f"{stream}:{number} names the patient: {line}"
            if not line.strip() or (stream == "stdout" and line == server.banner):
                # The one human start-up line (URL and key) is the only non-JSON output.
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"{stream}:{number} is not JSON: {line}") from None
            assert isinstance(record, dict), f"{stream}:{number} is not a JSON object: {line}"
            parsed[stream].append(record)
    return parsed["stdout"], parsed["stderr"]


def test_a_full_flow_leaves_no_patient_data_in_any_log_line(start_citas: Launcher) -> None:
    server = start_citas(module=True)
    assert server.api_key == "local-dev-key"
    api = server.api()
    _full_flow(api)
    _patient_answers(api, server)
    api.close()
    assert server.stop() == 0
    stdout, stderr = _check_lines(server)
    assert server.stdout_lines()[0] == server.banner

    access = [r for r in stderr if r.get("logger") == "local.access"]
    assert len(access) >= 20
    for record in access:
        assert {"time", "method", "route", "status", "duration_ms", "request_id"} <= set(record)
        assert "path" not in record
        assert record["route"] in {"unmatched", *ROUTES, *LOCAL_ROUTES}, record
    assert {r["status"] for r in access} >= {200, 201, 202, 400, 403, 409, 413, 422}

    # The patients' messages are printed (Spanish text, clinic time), their phones are not.
    # The flow changes appointments faster than messages go out, and a message that no longer
    # holds is not sent, so only the final cancellation is certain to be printed.
    notifications = [r for r in stdout if r.get("notification") in ("sms", "whatsapp")]
    texts = [r["text"] for r in notifications]
    assert any("fue cancelada." in t for t in texts)
    for record in notifications:
        assert set(record) == {"notification", "appointment_id", "text", "link"}
        if record["appointment_id"] is not None and record["link"]:
            assert "(hora de " in record["text"]
    # A message is the patient's own screen and carries their link; no log line ever does.
    tokens = {r["link"].rsplit("/", 1)[1] for r in notifications if r["link"]}
    assert tokens
    logs = [line for line in server.stdout_lines() if '"notification"' not in line]
    logs += server.stderr_lines()
    for token in tokens:
        assert not any(token in line for line in logs), token
    assert any(r.get("route") == "/p/{token}" for r in access)
    assert sum(r.get("route") == "/_local/inbound" for r in access) >= 6
