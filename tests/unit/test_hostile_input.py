"""Input an attacker would send, through the HTTP handler on the memory backend.

Each test here pins one defect found by testing the running API with hostile input: it failed
before the fix and passes after. The fixes are general (one rule per class of input, in
domain.text and the HTTP edge), so each test tries the whole class on every field it reaches.
"""

from __future__ import annotations

import base64
import json
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from domain.appointment import Patient
from domain.errors import ValidationError
from domain.pagination import PageTokens
from entrypoints import http_mapping as http
from tests.unit.http_world import (
    ANA,
    HOURS,
    LIMA_DOCTOR,
    MON,
    Api,
    booking,
)

PHONE = ANA["phone"]
# The same phone written so that a loose pattern took it for another one.
PHONE_SPELLINGS = [
    PHONE + "\n",
    "+5" + "".join(chr(0xFF10 + int(d)) for d in PHONE[2:]),  # fullwidth digits
    "+" + "".join(chr(0x0660 + int(d)) for d in PHONE[1:]),  # Arabic-Indic digits
    PHONE[:-1] + "\u0661",  # one Arabic-Indic one
    " " + PHONE,
    PHONE + " ",
    "+51 987 654 321",
    "+051987654321",
]


def raw(payload: dict[str, Any]) -> str:
    """A JSON body as a client sends it: escapes (`\\ud800`) as text, not decoded."""
    return json.dumps(payload, ensure_ascii=True)


def _stored(api: Api) -> list[dict[str, Any]]:
    reply = api.get("/appointments", query={"doctor_id": "dr-lima", "date": MON})
    assert reply.status == 200
    items: list[dict[str, Any]] = reply.json["items"]
    return items


# 1. One phone, one patient -----------------------------------------------------------------


@pytest.mark.parametrize("phone", PHONE_SPELLINGS)
def test_a_phone_that_is_not_canonical_e164_is_refused(api: Api, phone: str) -> None:
    reply = api.post("/appointments", booking(patient={**ANA, "phone": phone}))
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert reply.json["error"]["details"]["field"] == "patient.phone"
    assert _stored(api) == []


@pytest.mark.parametrize("phone", PHONE_SPELLINGS[:4])
def test_the_same_patient_cannot_hold_two_overlapping_appointments_by_respelling_the_phone(
    api: Api, phone: str
) -> None:
    assert api.put("/doctors/dr-otro", LIMA_DOCTOR).status == 201
    assert api.post("/appointments", booking()).status == 201
    other = {**booking(patient={**ANA, "phone": phone}), "doctor_id": "dr-otro"}
    assert api.post("/appointments", other).status == 400
    same = {**booking(), "doctor_id": "dr-otro"}
    assert api.post("/appointments", same).error_code == "patient_double_booked"
    (only,) = _stored(api)
    assert only["patient"]["phone"] == PHONE


@pytest.mark.parametrize("phone", PHONE_SPELLINGS)
def test_the_domain_refuses_the_same_spellings(phone: str) -> None:
    with pytest.raises(ValidationError):
        Patient("Ana", phone)


# Every validated value, with what a loose pattern let through after it.
_TAILS = ["\n", "\r\n", " ", "\x00"]
_FULLWIDTH_ONE = "\uff11"
_ARABIC_ONE = "\u0661"


@pytest.mark.parametrize("tail", _TAILS)
def test_no_validated_value_accepts_a_trailing_newline_or_space(api: Api, tail: str) -> None:
    token = "x" + tail
    day = {"doctor_id": "dr-lima", "date": MON}
    # A path that no route serves is a 404; one the router's `$` used to match, a 400.
    assert api.get(f"/doctors/dr-lima{tail}").status in (400, 404)
    refused = [
        api.get("/doctors/dr-lima/availability", query={"date": MON + tail}),
        api.get("/appointments", query={**day, "limit": "5" + tail}),
        api.get("/appointments", query={"country": "PE" + tail, "status": "requested"}),
        api.get("/appointments", query={"country": "PE", "status": "requested" + tail}),
        api.get("/appointments", query={**day, "next_token": token}),
        api.post("/appointments", booking(start=f"{MON}T09:00:00-05:00{tail}")),
        api.post("/appointments", booking(patient={**ANA, "document_id": "40404040" + tail})),
        api.post("/appointments", booking(), headers={"Idempotency-Key": token}),
        api.put("/doctors/dr-nuevo", {**LIMA_DOCTOR, "country": "PE" + tail}),
        api.put("/doctors/dr-nuevo", {**LIMA_DOCTOR, "time_zone": "America/Lima" + tail}),
        api.put(
            "/doctors/dr-nuevo",
            {**LIMA_DOCTOR, "working_hours": {"mon": [["09:00", "13:00" + tail]]}},
        ),
    ]
    assert [r.status for r in refused] == [400] * len(refused), [r.text for r in refused]
    assert _stored(api) == []


@pytest.mark.parametrize("digit", [_FULLWIDTH_ONE, _ARABIC_ONE])
def test_no_validated_value_accepts_a_non_ascii_digit(api: Api, digit: str) -> None:
    day = {"doctor_id": "dr-lima", "date": MON}
    refused = [
        api.get("/doctors/dr-lima/availability", query={"date": f"2030-0{digit}-07"}),
        api.get("/appointments", query={**day, "limit": digit}),
        api.post("/appointments", booking(start=f"2030-0{digit}-07T09:00:00-05:00")),
        api.post("/appointments", booking(start=f"{MON}T09:00:00-0{digit}:00")),
        api.post("/appointments", booking(patient={**ANA, "document_id": f"4040404{digit}"})),
        api.put(
            "/doctors/dr-nuevo",
            {**LIMA_DOCTOR, "working_hours": {"mon": [["09:00", f"{digit}3:00"]]}},
        ),
    ]
    assert [r.status for r in refused] == [400] * len(refused), [r.text for r in refused]


@pytest.mark.parametrize("value", ["3\n", "\u0663", 'W/"\u0663"', '"3"\n'])
def test_if_match_accepts_ascii_versions_only(api: Api, booked: dict[str, Any], value: str) -> None:
    path = f"/appointments/{booked['appointment_id']}"
    reply = api.post(f"{path}/status", {"status": "confirmed"}, headers={"If-Match": value})
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert api.get(path).json["version"] == 1


def test_an_appointment_id_with_a_trailing_newline_is_refused(
    api: Api, booked: dict[str, Any]
) -> None:
    reply = api.get(f"/appointments/{booked['appointment_id']}\n")
    assert (reply.status, reply.error_code) == (400, "validation_error")


# 2. Text that is not Unicode ---------------------------------------------------------------

SURROGATES = ["\ud800", "\udfff", "Ana\udc80Pérez", "\ud83d"]
# Every string field of every body, as a function of the bad text.
BODIES = {
    "doctor name": lambda t: ("PUT", "/doctors/dr-nuevo", {**LIMA_DOCTOR, "name": t}),
    "time_zone": lambda t: ("PUT", "/doctors/dr-nuevo", {**LIMA_DOCTOR, "time_zone": t}),
    "country": lambda t: ("PUT", "/doctors/dr-nuevo", {**LIMA_DOCTOR, "country": t}),
    "working hours": lambda t: (
        "PUT",
        "/doctors/dr-nuevo",
        {**LIMA_DOCTOR, "working_hours": {"mon": [["09:00", t]]}},
    ),
    "unknown key": lambda t: ("PUT", "/doctors/dr-nuevo", {**LIMA_DOCTOR, t: 1}),
    "patient name": lambda t: ("POST", "/appointments", booking(patient={**ANA, "name": t})),
    "patient phone": lambda t: ("POST", "/appointments", booking(patient={**ANA, "phone": t})),
    "document": lambda t: ("POST", "/appointments", booking(patient={**ANA, "document_id": t})),
    "notes": lambda t: ("POST", "/appointments", booking(notes=t)),
    "start": lambda t: ("POST", "/appointments", booking(start=t)),
    "async patient name": lambda t: (
        "POST",
        "/appointment-requests",
        booking(patient={**ANA, "name": t}),
    ),
}


@pytest.mark.parametrize("field", sorted(BODIES))
@pytest.mark.parametrize("text", SURROGATES)
def test_a_lone_surrogate_in_any_string_is_a_400_before_anything_is_written(
    api: Api, container: Any, field: str, text: str
) -> None:
    method, path, body = BODIES[field](text)
    reply = api.call(method, path, body=raw(body))
    assert (reply.status, reply.error_code) == (400, "validation_error")
    reply.text.encode("utf-8")  # the answer itself is always valid UTF-8
    store = container.memory.store
    assert store.appointments == {} and store.requests == {}
    assert api.get("/doctors/dr-nuevo").status == 404


def test_a_lone_surrogate_in_a_reason_is_refused(api: Api, booked: dict[str, Any]) -> None:
    path = f"/appointments/{booked['appointment_id']}/status"
    reply = api.post(path, raw({"status": "confirmed", "reason": "ok\ud800"}))
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert api.get(f"/appointments/{booked['appointment_id']}").json["status"] == "requested"


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\u0085", "\u2028", "\n", "\t"])
def test_names_hold_no_control_character_and_notes_only_line_breaks(api: Api, char: str) -> None:
    name = api.post("/appointments", booking(patient={**ANA, "name": f"Ana{char}Pérez"}))
    assert (name.status, name.error_code) == (400, "validation_error")
    doctor = api.put("/doctors/dr-nuevo", {**LIMA_DOCTOR, "name": f"Dra.{char}X"})
    assert doctor.status == 400
    notes = api.post("/appointments", booking(notes=f"línea 1{char}línea 2"))
    assert notes.status == (201 if char in "\n\t" else 400), notes.text
    if notes.status == 201:
        assert api.get(f"/appointments/{notes.json['appointment_id']}").json["notes"] == (
            f"línea 1{char}línea 2"
        )


def test_a_value_stored_before_the_rules_cannot_break_a_response(
    api: Api, booked: dict[str, Any], container: Any
) -> None:
    # Data written by an older version: the record holds a lone surrogate.
    store = container.memory.store
    stored = store.appointments["demo", booked["appointment_id"]]
    store.appointments["demo", stored.appointment_id] = attrs.evolve(stored, notes="x\ud800")
    one = api.get(f"/appointments/{booked['appointment_id']}")
    assert one.status == 200
    assert one.json["notes"] == "x\ud800"  # escaped on the wire, the same value read back
    listed = api.get("/appointments", query={"doctor_id": "dr-lima", "date": MON})
    assert listed.status == 200 and listed.json["items"][0]["notes"] == "x\ud800"


def test_dumps_always_gives_text_that_encodes_as_utf8() -> None:
    assert http.dumps({"a": "ñ"}) == '{"a":"ñ"}'
    assert http.dumps({"a": "\ud800"}).encode("utf-8") == b'{"a":"\\ud800"}'


def test_query_parameters_and_headers_that_are_not_unicode_are_refused(api: Api) -> None:
    assert api.get("/appointments", query={"doctor_id": "dr-lima\ud800", "date": MON}).status == 400
    assert api.get("/appointments", query={"doctor_id": "dr-lima", "\ud800": MON}).status == 400
    reply = api.post("/appointments", booking(), headers={"Idempotency-Key": "k\ud800"})
    assert reply.status == 400
    assert _stored(api) == []


# 3. Time zones that are not zones ----------------------------------------------------------


@pytest.fixture(params=["system", "tzdata"])
def zone_source(request: pytest.FixtureRequest) -> Iterator[str]:
    """Zones from the system database, then from the tzdata package (as on Lambda)."""
    if request.param == "tzdata":
        zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    yield str(request.param)
    zoneinfo.reset_tzpath()
    zoneinfo.ZoneInfo.clear_cache()


@pytest.mark.parametrize(
    "zone",
    ["Etc", "America", "America/", "America/Argentina", "zone.tab", "tzdata.zi", "../etc/passwd",
     "/etc/localtime", "America/Lima\n", "América/Lima", "", "UTC\x00"],
)  # fmt: skip
def test_a_time_zone_that_does_not_load_as_a_zone_is_a_400(
    api: Api, zone_source: str, zone: str
) -> None:
    reply = api.put("/doctors/dr-nuevo", {**LIMA_DOCTOR, "time_zone": zone})
    assert (reply.status, reply.error_code) == (400, "validation_error"), reply.text
    assert reply.json["error"]["details"]["field"] == "time_zone"
    assert api.get("/doctors/dr-nuevo").status == 404


def test_a_real_zone_still_loads_from_either_source(api: Api, zone_source: str) -> None:
    reply = api.put("/doctors/dr-nuevo", {**LIMA_DOCTOR, "time_zone": "America/Bogota"})
    assert reply.status == 201, reply.text


# 4. Page tokens that the server did not issue ----------------------------------------------


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        _b64("[" * 3000),
        _b64("[" * 3000) + "." + _b64("x" * 16),
        _b64('{"q":"0","c":{}}') + "." + _b64("\0" * 16),
        "A" * 5000,
        "a.b.c",
        ".",
        "x" * 10 + ".",
    ],
    ids=["nested", "nested-signed-badly", "unsigned", "huge", "three-parts", "dot", "no-mac"],
)
def test_a_next_token_the_server_did_not_issue_is_a_400(api: Api, token: str) -> None:
    query = {"doctor_id": "dr-lima", "date": MON, "next_token": token}
    reply = api.get("/appointments", query=query)
    assert (reply.status, reply.error_code) == (400, "validation_error"), reply.text
    assert reply.json["error"]["details"]["field"] == "next_token"


def test_a_token_signed_with_another_key_is_refused() -> None:
    query = {"doctor_id": "dr-lima", "date": MON}
    token = PageTokens(b"k" * 32).encode(query, {"start": "x", "id": "y"})
    assert PageTokens(b"k" * 32).decode(token, query) == {"start": "x", "id": "y"}
    with pytest.raises(ValidationError):
        PageTokens(b"j" * 32).decode(token, query)


def test_a_genuine_token_still_pages(api: Api) -> None:
    for hour in ("09:00", "09:30", "10:00"):
        patient = {**ANA, "phone": f"+5198765{hour[:2]}{hour[3:]}"}
        assert (
            api.post("/appointments", booking(f"{MON}T{hour}:00-05:00", patient=patient)).status
            == 201
        )
    query = {"doctor_id": "dr-lima", "date": MON, "limit": "2"}
    first = api.get("/appointments", query=query).json
    second = api.get("/appointments", query={**query, "next_token": first["next_token"]}).json
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert second["next_token"] is None


# 6. A doctor's zone cannot change under appointments set in the old one --------------------


def test_changing_a_doctors_zone_with_active_appointments_to_come_is_409(
    api: Api, booked: dict[str, Any]
) -> None:
    reply = api.put("/doctors/dr-lima", {**LIMA_DOCTOR, "time_zone": "America/Bogota"})
    assert (reply.status, reply.error_code) == (409, "time_zone_conflict")
    details = reply.json["error"]["details"]
    assert details["appointment_ids"] == [booked["appointment_id"]]
    assert (details["count"], details["time_zone"]) == (1, "America/Lima")
    assert api.get("/doctors/dr-lima").json["time_zone"] == "America/Lima"
    # The appointment is still shown, and listed, in the zone it was set in.
    assert api.get(f"/appointments/{booked['appointment_id']}").json["start"].endswith("-05:00")


def test_a_zone_change_is_allowed_once_nothing_active_is_left(
    api: Api, booked: dict[str, Any]
) -> None:
    assert api.delete(f"/appointments/{booked['appointment_id']}").status == 200
    reply = api.put("/doctors/dr-lima", {**LIMA_DOCTOR, "time_zone": "America/Bogota"})
    assert reply.status == 200, reply.text
    assert reply.json["time_zone"] == "America/Bogota"


def test_replacing_a_doctor_in_the_same_zone_is_allowed_with_appointments_to_come(
    api: Api, booked: dict[str, Any]
) -> None:
    reply = api.put(
        "/doctors/dr-lima", {**LIMA_DOCTOR, "name": "Dra. María Q.", "working_hours": HOURS}
    )
    assert reply.status == 200
    same = api.put("/doctors/dr-lima", {**LIMA_DOCTOR, "time_zone": "America/Lima"})
    assert same.status == 200


def test_appointments_that_have_ended_do_not_block_a_zone_change(
    api: Api, booked: dict[str, Any], clock: Any
) -> None:
    clock.set(datetime(2030, 1, 8, tzinfo=UTC))  # the day after the visit
    reply = api.put("/doctors/dr-lima", {**LIMA_DOCTOR, "time_zone": "America/Bogota"})
    assert reply.status == 200, reply.text
