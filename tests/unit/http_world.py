"""The world of the HTTP API tests: the handler on a slot, the fixtures, the sample data."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from adapters.system import FixedClock
from domain.use_cases import Clinic
from entrypoints.bootstrap import App, build_app
from entrypoints.config import Settings
from tests.support.apps import AppSlot
from tests.unit.apigw import Client, Reply

http_api: ModuleType = importlib.import_module("entrypoints.lambda.http_api")
# The handler under test runs on the app each test builds and puts in the slot.
SLOT = AppSlot()
handler = http_api.make_handler(SLOT)

# A Tuesday noon in Lima; Monday 2030-01-07 is the booking day (Lima is UTC-5 all year,
# Santiago is UTC-3 in its summer).
NOW = datetime(2030, 1, 1, 17, 0, tzinfo=UTC)
MON = "2030-01-07"
HOURS = {d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
LIMA_DOCTOR = {"name": "Dra. María Quispe", "country": "PE", "working_hours": HOURS}
SCL_DOCTOR = {
    "name": "Dr. Matías Soto",
    "country": "CL",
    "slot_minutes": 20,
    "working_hours": HOURS,
}
ANA = {"name": "Ana Pérez Ñahui", "phone": "+51987654321", "document_id": "40404040"}
LUIS = {"name": "Luis Quispe", "phone": "+51911222333"}
UNKNOWN_ID = "01890a5d-ac96-774b-bcce-b302099a8057"


def booking(start: str = f"{MON}T09:00:00-05:00", **extra: Any) -> dict[str, Any]:
    return {"doctor_id": "dr-lima", "patient": ANA, "start": start, **extra}


class Api(Client):
    """The client, checking what every answer must be: JSON, never a stack trace."""

    def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        reply = super().call(method, path, **kwargs)
        assert "Traceback" not in reply.text
        assert reply.header("Content-Type") == "application/json; charset=utf-8"
        body = reply.json
        if reply.status >= 400:
            assert set(body) == {"error"}
            assert set(body["error"]) == {"code", "message", "details"}
            assert isinstance(body["error"]["details"], dict)
        return reply


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def container(clock: FixedClock) -> Iterator[App]:
    """The test's app (named as before the app object existed)."""
    SLOT.app = build_app(Settings(), clock=clock)
    yield SLOT.app
    SLOT.app = None


@pytest.fixture
def api(container: Any) -> Api:
    client = Api(handler)
    assert client.put("/doctors/dr-lima", LIMA_DOCTOR).status == 201
    assert client.put("/doctors/dr-scl", SCL_DOCTOR).status == 201
    return client


@pytest.fixture
def booked(api: Api) -> dict[str, Any]:
    reply = api.post("/appointments", booking())
    assert reply.status == 201
    return dict(reply.json)


def the_clinic(container: App) -> Clinic:
    return container.for_clinic("demo")
