"""Clinics at the edge: configuration, the key that chooses the clinic, and isolation in use.

The HTTP handler learns the clinic only from the API key id API Gateway validated
(`requestContext.identity.apiKeyId`); these tests drive it with real proxy events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from adapters.clinics import StaticClinicDirectory
from adapters.system import FixedClock
from domain.clinics import ClinicProfile
from domain.errors import TemporarilyUnavailable
from entrypoints import messages
from entrypoints.bootstrap import App, build_app
from entrypoints.config import (
    LocalClinic,
    Settings,
    check_clinics,
    default_clinic_name,
    parse_clinic_option,
)
from tests.unit.apigw import event
from tests.unit.http_world import LIMA_DOCTOR, MON, NOW, SLOT, booking, handler

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SOL = LocalClinic(ClinicProfile("sol", "Clínica Sol"), "sol-key")
LUNA = LocalClinic(ClinicProfile("luna", "Clínica Luna"), "luna-key")


@pytest.fixture
def two() -> Iterator[App]:
    """The HTTP handler's app serving two clinics on one memory store."""
    # One page-token key for the deployment, as Terraform gives every function.
    settings = Settings(clinics=(SOL, LUNA), notifier="memory", page_token_key=b"k" * 32)
    # The booking day of http_world lies within its doctors' horizon from its clock.
    SLOT.app = build_app(settings, clock=FixedClock(NOW))
    yield SLOT.app
    SLOT.app = None


def call(method: str, path: str, key_id: str | None, body: Any = None, **kw: Any) -> Any:
    """The handler's answer to one proxy event whose key API Gateway knows as `key_id`."""
    raw = event(method, path, body=body, **kw)
    raw["requestContext"]["identity"]["apiKeyId"] = key_id
    response = handler(raw, None)
    return response["statusCode"], json.loads(response["body"])


# Configuration ----------------------------------------------------------------------------


def test_without_clinics_configured_there_is_one_demo_clinic_on_the_api_key() -> None:
    (only,) = Settings.from_env({"CITAS_API_KEY": "k-1"}).clinics
    assert (only.profile, only.api_key) == (ClinicProfile("demo", "Clínica Demo"), "k-1")
    assert only.api_key_id == "local-demo"


def test_citas_clinics_names_each_clinic_by_its_id() -> None:
    settings = Settings.from_env({"CITAS_CLINICS": "sol=k-1, san-borja=k-2"})
    assert [(c.profile.clinic_id, c.profile.name, c.api_key) for c in settings.clinics] == [
        ("sol", "Clínica Sol", "k-1"),
        ("san-borja", "Clínica San Borja", "k-2"),
    ]
    assert default_clinic_name("a-1") == "Clínica A 1"


def test_a_clinic_option_may_name_the_clinic() -> None:
    clinic = parse_clinic_option("sol:k-1:Clínica del Sol")
    assert (clinic.profile.clinic_id, clinic.profile.name, clinic.api_key) == (
        "sol",
        "Clínica del Sol",
        "k-1",
    )
    assert parse_clinic_option("sol:k-1").profile.name == "Clínica Sol"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("sol", "without a key"),
        ("Sol:k-1", "clinic id 'Sol'"),
        ("s:k-1", "clinic id 's'"),
        ("sol:k 1", "the key of clinic 'sol'"),
        ("sol::Name", "the key of clinic 'sol'"),
        ("sol:k-1:" + "x" * 81, "1-80 characters"),
    ],
)
def test_a_malformed_clinic_option_is_refused_by_name(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_clinic_option(value)


def test_two_clinics_may_share_neither_an_id_nor_a_key() -> None:
    with pytest.raises(ValueError, match="'luna' shares its key"):
        check_clinics((SOL, LocalClinic(LUNA.profile, SOL.api_key)), "--clinic")
    with pytest.raises(ValueError, match="'sol' is named twice"):
        check_clinics((SOL, LocalClinic(SOL.profile, "other")), "--clinic")
    with pytest.raises(ValueError, match="shares its key"):
        Settings.from_env({"CITAS_CLINICS": "sol=k-1,luna=k-1"})


def test_a_settings_repr_never_shows_a_clinics_key() -> None:
    assert "sol-key" not in repr(Settings(clinics=(SOL,)))


def test_the_clinics_parameter_path_is_an_ssm_path() -> None:
    settings = Settings.from_env({"CITAS_CLINICS_PARAMETER_PATH": "/citas-dev/clinics/"})
    assert settings.clinics_parameter_path == "/citas-dev/clinics"
    with pytest.raises(ValueError, match="CITAS_CLINICS_PARAMETER_PATH"):
        Settings.from_env({"CITAS_CLINICS_PARAMETER_PATH": "citas clinics"})
    # A deployed function does not read the local server's clinics at all.
    deployed = {"CITAS_CLINICS_PARAMETER_PATH": "/p/clinics", "CITAS_API_KEY": "not a key"}
    assert Settings.from_env({**deployed, "CITAS_CLINICS": "bad"}).clinics == ()


# The key chooses the clinic ----------------------------------------------------------------


def test_get_clinic_answers_the_clinic_of_the_key(two: App) -> None:
    assert call("GET", "/clinic", SOL.api_key_id) == (
        200,
        {"clinic_id": "sol", "name": "Clínica Sol"},
    )
    assert call("GET", "/clinic", LUNA.api_key_id)[1]["clinic_id"] == "luna"


@pytest.mark.parametrize("key_id", ["local-demo", "unknown", "", None])
def test_a_key_that_stands_for_no_clinic_is_forbidden_and_runs_nothing(
    two: App, key_id: str | None
) -> None:
    status, body = call("PUT", "/doctors/dr-lima", key_id, LIMA_DOCTOR)
    assert (status, body) == (403, {"message": "Forbidden"})
    for clinic in (SOL, LUNA):
        assert call("GET", "/doctors/dr-lima", clinic.api_key_id)[0] == 404


def test_nothing_the_client_sends_chooses_another_clinic(two: App) -> None:
    call("PUT", "/doctors/dr-lima", LUNA.api_key_id, LIMA_DOCTOR)
    # A clinic header, query parameter or body field is not a way in.
    status, _ = call("GET", "/doctors/dr-lima", SOL.api_key_id, headers={"x-clinic-id": "luna"})
    assert status == 404
    status, body = call("POST", "/appointments", SOL.api_key_id, {**booking(), "clinic_id": "luna"})
    assert (status, body["error"]["code"]) == (400, "validation_error")


def test_each_clinics_ids_are_not_found_for_the_other(two: App) -> None:
    for clinic in (SOL, LUNA):
        assert call("PUT", "/doctors/dr-lima", clinic.api_key_id, LIMA_DOCTOR)[0] == 201
    status, sol_booking = call("POST", "/appointments", SOL.api_key_id, booking())
    assert status == 201
    # The same doctor id, phone and time in the other clinic: booked, not blocked.
    assert call("POST", "/appointments", LUNA.api_key_id, booking())[0] == 201
    appointment_id = sol_booking["appointment_id"]
    status, body = call("GET", f"/appointments/{appointment_id}", LUNA.api_key_id)
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, _ = call("DELETE", f"/appointments/{appointment_id}", LUNA.api_key_id)
    assert status == 404
    assert call("GET", f"/appointments/{appointment_id}", SOL.api_key_id)[1]["status"] == (
        "requested"
    )


def test_a_patient_message_starts_with_its_clinics_name(two: App) -> None:
    call("PUT", "/doctors/dr-lima", LUNA.api_key_id, LIMA_DOCTOR)
    call("POST", "/appointments", LUNA.api_key_id, booking())
    (event_,) = two.outbox.pending(10)
    assert event_.clinic_id == "luna"
    assert two.messenger.handle(event_)
    (sent,) = two.messenger.notifier.sent  # type: ignore[attr-defined]
    assert sent[1].startswith("Clínica Luna: Hola, reservaste una cita")


# Messages name their clinic ----------------------------------------------------------------


def test_a_queued_request_of_a_clinic_not_served_is_tried_again_not_dropped(
    two: App,
) -> None:
    # Just added and not yet in this container's directory, or removed: SQS delivers it
    # again, and after the last try moves it to the dead-letter queue.
    body = json.dumps({"clinic_id": "gone", "request_id": "r-1"})
    with pytest.raises(TemporarilyUnavailable):
        messages.book_request(two, body, {})


def test_an_event_of_a_clinic_not_served_is_tried_again_and_sent_once_it_is(two: App) -> None:
    call("PUT", "/doctors/dr-lima", LUNA.api_key_id, LIMA_DOCTOR)
    call("POST", "/appointments", LUNA.api_key_id, booking())
    (event_,) = two.outbox.pending(10)
    known = two.messenger.clinics
    two.messenger.clinics = StaticClinicDirectory([(SOL.profile, SOL.api_key_id)])
    with pytest.raises(TemporarilyUnavailable):
        two.messenger.handle(event_)
    assert two.messenger.notifier.sent == []  # type: ignore[attr-defined]
    two.messenger.clinics = known  # the directory has learned the clinic
    assert two.messenger.handle(event_)
    assert len(two.messenger.notifier.sent) == 1  # type: ignore[attr-defined]


def test_a_queued_request_without_a_clinic_is_poison(two: App) -> None:
    with pytest.raises(messages.PoisonMessage, match="names no clinic"):
        messages.book_request(two, json.dumps({"request_id": "r-1"}), {})


def test_the_use_cases_of_a_clinic_not_served_cannot_be_had(two: App) -> None:
    assert two.for_clinic("sol") is two.for_clinic("sol")
    with pytest.raises(TemporarilyUnavailable):
        two.for_clinic("gone")


def test_a_directory_refuses_a_clinic_or_key_given_twice() -> None:
    with pytest.raises(ValueError, match="given twice"):
        StaticClinicDirectory([(SOL.profile, "k"), (LUNA.profile, "k")])


class _Unreachable:
    """A clinic directory whose store is down (Parameter Store throttled, say)."""

    def get(self, clinic_id: str) -> None:
        raise TemporarilyUnavailable("throttled", service="ssm", retry_after_seconds=2)

    by_api_key_id = get

    def all(self) -> list[ClinicProfile]:
        raise TemporarilyUnavailable("throttled", service="ssm", retry_after_seconds=2)


def test_clinics_that_cannot_be_read_are_a_503_and_nothing_runs() -> None:
    SLOT.app = attrs.evolve(build_app(Settings(clinics=(SOL,))), clinics=_Unreachable())
    try:
        raw = event("PUT", "/doctors/dr-lima", body=LIMA_DOCTOR)
        raw["requestContext"]["identity"]["apiKeyId"] = SOL.api_key_id
        response = handler(raw, None)
        assert response["statusCode"] == 503
        assert response["headers"]["Retry-After"] == "2"
        assert json.loads(response["body"])["error"]["code"] == "temporarily_unavailable"
        assert SLOT.app.memory is not None and SLOT.app.memory.store.doctors == {}
    finally:
        SLOT.app = None


def test_a_page_token_of_one_clinic_is_refused_by_another(two: App) -> None:
    for clinic in (SOL, LUNA):
        call("PUT", "/doctors/dr-lima", clinic.api_key_id, LIMA_DOCTOR)
        for hour, who in (("09:00", "+51987650001"), ("10:00", "+51987650002")):
            start = f"{MON}T{hour}:00-05:00"
            patient = {"name": "Ana", "phone": who}
            assert (
                call("POST", "/appointments", clinic.api_key_id, booking(start, patient=patient))[0]
                == 201
            )
    day = {"doctor_id": "dr-lima", "date": MON, "limit": "1"}
    status, page = call("GET", "/appointments", SOL.api_key_id, query=day)
    assert status == 200 and page["next_token"]
    # The same list in the other clinic: a token signed for sol's is no token there.
    status, body = call(
        "GET", "/appointments", LUNA.api_key_id, query={**day, "next_token": page["next_token"]}
    )
    assert (status, body["error"]["code"]) == (400, "validation_error")
    status, more = call(
        "GET", "/appointments", SOL.api_key_id, query={**day, "next_token": page["next_token"]}
    )
    assert status == 200 and len(more["items"]) == 1
