"""One contract for the patient stores: contacts, sent messages and held messages.

Each test runs on the in-memory reference and on DynamoDB Local and asserts the same outcome,
so neither backend can be told from the other by the messaging use cases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from adapters.aws.dynamodb import (
    DynamoDBEventOutbox,
    DynamoDBPatientContacts,
    DynamoDBRepositories,
    DynamoDBSentMessages,
)
from adapters.aws.resources import load_table_spec, provision_table
from adapters.memory.patients import InMemorySentMessages
from adapters.memory.store import InMemoryEventOutbox, InMemoryRepositories, MemoryStore
from domain.events import Event, PatientOptedOut, ReminderDue
from ports.patients import Contact, DeferredMessage, SentMessage, SentMessages
from ports.repositories import ClinicRepositories, EventOutbox
from tests.support.dynamodb_local import DynamoDBLocal, dynamodb_client

_DYNAMODB_LOCAL = pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)
BACKENDS = ["memory", _DYNAMODB_LOCAL]
on_dynamodb_local = pytest.mark.parametrize("stores", [_DYNAMODB_LOCAL], indirect=True)

NOW = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
PATIENT = "9f2c" * 16  # a patient key: a hash of the phone, never the phone
OTHER = "otra"


class Stores:
    """The patient stores of one backend and the outbox they commit events to."""

    def __init__(
        self,
        repos: ClinicRepositories,
        sent: SentMessages,
        outbox: EventOutbox,
        *,
        client: Any = None,
        table: str = "",
    ) -> None:
        self.repos = repos
        self.contacts = repos.contacts("demo")
        self.deferred = repos.deferred("demo")
        self.sent = sent
        self.outbox = outbox
        self.client = client
        self.table = table


@pytest.fixture(params=BACKENDS)
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    """The patient stores of one backend, on an empty table."""
    if request.param == "memory":
        store = MemoryStore()
        yield Stores(
            InMemoryRepositories(store), InMemorySentMessages(store), InMemoryEventOutbox(store)
        )
        return
    server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
    client = dynamodb_client(server.endpoint_url)
    # The table of infra/terraform (both GSIs, the TTL attribute), under a name of its own.
    table = f"citas-test-{uuid.uuid4().hex[:12]}"
    provision_table(client, table, load_table_spec())
    yield Stores(
        DynamoDBRepositories(table, client),
        DynamoDBSentMessages(table, client, now=lambda: NOW),
        DynamoDBEventOutbox(table, client, retry_delay=0.001),
        client=client,
        table=table,
    )
    client.delete_table(TableName=table)


def opted_out(event_id: str, clinic: str = "demo", key: str = PATIENT) -> PatientOptedOut:
    return PatientOptedOut(event_id, clinic, None, 1, NOW, {"patient_key": key})


def reminder(event_id: str, clinic: str = "demo") -> ReminderDue:
    return ReminderDue(event_id, clinic, f"appt-{event_id}", 3, NOW, {"start": "2026-12-02"})


def pending(stores: Stores) -> list[Event]:
    return list(stores.outbox.pending(100))


def all_items(stores: Stores) -> dict[tuple[str, str], dict[str, Any]]:
    """Every item of the table by key (a test-only Scan, to read back what was written)."""
    deserializer = TypeDeserializer()
    found = stores.client.scan(TableName=stores.table, ConsistentRead=True)
    assert "LastEvaluatedKey" not in found
    items = [{k: deserializer.deserialize(v) for k, v in i.items()} for i in found["Items"]]
    return {(str(i["pk"]), str(i["sk"])): i for i in items}


# --- contacts ------------------------------------------------------------------------------


def test_an_unknown_contact_is_none(stores: Stores) -> None:
    assert stores.contacts.get(PATIENT) is None


def test_await_answer_adds_entries_and_drops_the_past_ones(stores: Stores) -> None:
    day = timedelta(days=1)
    stores.contacts.await_answer(PATIENT, "a1", NOW + day, now=NOW)
    stores.contacts.await_answer(PATIENT, "a2", NOW + 2 * day, now=NOW)
    assert stores.contacts.get(PATIENT) == Contact(
        PATIENT, awaiting={"a1": NOW + day, "a2": NOW + 2 * day}
    )

    # A day and a bit later a1 has started: the next write drops it. A start equal to `now`
    # is not past.
    later = NOW + day + timedelta(hours=1)
    stores.contacts.await_answer(PATIENT, "a3", later, now=later)
    assert stores.contacts.get(PATIENT) == Contact(
        PATIENT, awaiting={"a2": NOW + 2 * day, "a3": later}
    )

    # An appointment asked about again keeps only its new start; one already past is no entry.
    stores.contacts.await_answer(PATIENT, "a2", NOW + 3 * day, now=later)
    stores.contacts.await_answer(PATIENT, "a4", later - timedelta(minutes=1), now=later)
    found = stores.contacts.get(PATIENT)
    assert found is not None
    assert dict(found.awaiting) == {"a2": NOW + 3 * day, "a3": later}
    assert not found.opted_out


def test_a_contact_asked_only_about_a_past_appointment_awaits_nothing(stores: Stores) -> None:
    stores.contacts.await_answer(PATIENT, "a1", NOW - timedelta(hours=1), now=NOW)
    assert stores.contacts.get(PATIENT) == Contact(PATIENT)


def test_answered_forgets_one_awaited_answer(stores: Stores) -> None:
    start = NOW + timedelta(days=1)
    stores.contacts.await_answer(PATIENT, "a1", start, now=NOW)
    stores.contacts.await_answer(PATIENT, "a2", start, now=NOW)
    stores.contacts.answered(PATIENT, "a1")
    assert stores.contacts.get(PATIENT) == Contact(PATIENT, awaiting={"a2": start})
    stores.contacts.answered(PATIENT, "a1")  # again: absent is fine
    stores.contacts.answered(PATIENT, "never-asked")
    assert stores.contacts.get(PATIENT) == Contact(PATIENT, awaiting={"a2": start})


def test_answered_by_an_unknown_contact_creates_nothing(stores: Stores) -> None:
    stores.contacts.answered(PATIENT, "a1")
    assert stores.contacts.get(PATIENT) is None


def test_opting_out_changes_once_and_commits_one_event(stores: Stores) -> None:
    assert stores.contacts.set_opted_out(PATIENT, True, opted_out("e1"))
    assert not stores.contacts.set_opted_out(PATIENT, True, opted_out("e2"))
    assert stores.contacts.get(PATIENT) == Contact(PATIENT, opted_out=True)
    assert [(e.type, e.event_id) for e in pending(stores)] == [("PatientOptedOut", "e1")]
    assert pending(stores)[0] == opted_out("e1")

    # Back in (no event), then again: the second is no change.
    assert stores.contacts.set_opted_out(PATIENT, False, None)
    assert not stores.contacts.set_opted_out(PATIENT, False, None)
    assert stores.contacts.get(PATIENT) == Contact(PATIENT, opted_out=False)
    # And out again, without an event this time.
    assert stores.contacts.set_opted_out(PATIENT, True, None)
    assert stores.contacts.get(PATIENT) == Contact(PATIENT, opted_out=True)
    assert [e.event_id for e in pending(stores)] == ["e1"]


def test_opting_in_a_phone_never_opted_out_writes_nothing(stores: Stores) -> None:
    assert not stores.contacts.set_opted_out(PATIENT, False, opted_out("e1"))
    assert not stores.contacts.set_opted_out(PATIENT, False, None)
    assert stores.contacts.get(PATIENT) is None
    assert pending(stores) == []
    # A contact that awaits answers and never opted out is no change either.
    stores.contacts.await_answer(PATIENT, "a1", NOW + timedelta(days=1), now=NOW)
    assert not stores.contacts.set_opted_out(PATIENT, False, opted_out("e2"))
    assert pending(stores) == []


def test_opting_out_keeps_the_awaited_answers(stores: Stores) -> None:
    start = NOW + timedelta(days=1)
    stores.contacts.await_answer(PATIENT, "a1", start, now=NOW)
    assert stores.contacts.set_opted_out(PATIENT, True, opted_out("e1"))
    stores.contacts.await_answer(PATIENT, "a2", start, now=NOW)
    assert stores.contacts.get(PATIENT) == Contact(
        PATIENT, opted_out=True, awaiting={"a1": start, "a2": start}
    )


def test_contacts_of_two_clinics_are_independent(stores: Stores) -> None:
    other = stores.repos.contacts(OTHER)
    start = NOW + timedelta(days=1)
    assert stores.contacts.set_opted_out(PATIENT, True, opted_out("e1"))
    other.await_answer(PATIENT, "b1", start, now=NOW)
    assert other.get(PATIENT) == Contact(PATIENT, awaiting={"b1": start})
    assert stores.contacts.get(PATIENT) == Contact(PATIENT, opted_out=True)
    # The other clinic's phone is still in: opting it out is a change there too.
    assert other.set_opted_out(PATIENT, True, opted_out("e2", clinic=OTHER))
    stores.contacts.answered(PATIENT, "b1")
    assert other.get(PATIENT) == Contact(PATIENT, opted_out=True, awaiting={"b1": start})
    assert {(e.clinic_id, e.event_id) for e in pending(stores)} == {("demo", "e1"), (OTHER, "e2")}


def test_a_contact_refuses_another_clinics_event(stores: Stores) -> None:
    with pytest.raises(ValueError, match="clinic"):
        stores.contacts.set_opted_out(PATIENT, True, opted_out("e1", clinic=OTHER))
    assert stores.contacts.get(PATIENT) is None


# --- sent messages -------------------------------------------------------------------------


def test_sent_messages_round_trip_by_message_id(stores: Stores) -> None:
    full = SentMessage("demo", "a1", "whatsapp", "Hola, su cita es mañana", "https://x/l/abc")
    bare = SentMessage(OTHER, None, "sms", "Hola")
    stores.sent.remember("wamid.1", full)
    stores.sent.remember("sns-2", bare)
    assert stores.sent.find("wamid.1") == full
    assert stores.sent.find("sns-2") == bare
    assert stores.sent.find("unknown") is None
    # A retried send under the same id replaces the message.
    stores.sent.remember("sns-2", SentMessage(OTHER, "a9", "sms", "Hola de nuevo"))
    assert stores.sent.find("sns-2") == SentMessage(OTHER, "a9", "sms", "Hola de nuevo")


# --- deferred messages ---------------------------------------------------------------------


def test_deferring_an_event_twice_keeps_the_first(stores: Stores) -> None:
    first = NOW + timedelta(hours=8)
    stores.deferred.defer(reminder("e1"), first)
    stores.deferred.defer(reminder("e1"), NOW + timedelta(hours=1))
    assert stores.deferred.due(NOW + timedelta(days=1), 10) == [
        DeferredMessage(reminder("e1"), first)
    ]


def test_due_lists_oldest_first_up_to_now_and_limit(stores: Stores) -> None:
    morning = NOW + timedelta(hours=8)
    stores.deferred.defer(reminder("e3"), morning + timedelta(minutes=30))
    stores.deferred.defer(reminder("e1"), morning)
    stores.deferred.defer(reminder("e2"), morning)  # the same instant: by event id
    stores.deferred.defer(reminder("e4"), morning + timedelta(hours=1))

    def ids(now: datetime, limit: int = 10) -> list[str]:
        return [m.event.event_id for m in stores.deferred.due(now, limit)]

    assert ids(morning - timedelta(microseconds=1)) == []
    assert ids(morning) == ["e1", "e2"]  # due exactly now: due
    assert ids(morning + timedelta(minutes=30)) == ["e1", "e2", "e3"]
    assert ids(morning + timedelta(days=1)) == ["e1", "e2", "e3", "e4"]
    assert ids(morning + timedelta(days=1), 3) == ["e1", "e2", "e3"]
    assert ids(morning + timedelta(days=1), 1) == ["e1"]
    assert ids(morning + timedelta(days=1), 0) == []
    assert stores.deferred.due(morning, 1) == [DeferredMessage(reminder("e1"), morning)]


def test_done_forgets_a_held_message(stores: Stores) -> None:
    due_at = NOW + timedelta(hours=8)
    stores.deferred.defer(reminder("e1"), due_at)
    stores.deferred.defer(reminder("e2"), due_at)
    stores.deferred.done("e1")
    stores.deferred.done("e1")  # again: absent is fine
    stores.deferred.done("never-held")
    assert [m.event.event_id for m in stores.deferred.due(due_at, 10)] == ["e2"]
    # Done, it may be held again (a redelivered event: the caller's marker decides).
    stores.deferred.defer(reminder("e1"), due_at)
    assert [m.event.event_id for m in stores.deferred.due(due_at, 10)] == ["e1", "e2"]


def test_held_messages_of_two_clinics_are_independent(stores: Stores) -> None:
    other = stores.repos.deferred(OTHER)
    due_at = NOW + timedelta(hours=8)
    stores.deferred.defer(reminder("e1"), due_at)
    other.defer(reminder("e2", clinic=OTHER), due_at)
    assert [m.event.event_id for m in stores.deferred.due(due_at, 10)] == ["e1"]
    assert other.due(due_at, 10) == [DeferredMessage(reminder("e2", clinic=OTHER), due_at)]
    stores.deferred.done("e2")  # not this clinic's: nothing happens
    other.done("e1")
    assert [m.event.event_id for m in stores.deferred.due(due_at, 10)] == ["e1"]
    assert [m.event.event_id for m in other.due(due_at, 10)] == ["e2"]
    with pytest.raises(ValueError, match="clinic"):
        stores.deferred.defer(reminder("e3", clinic=OTHER), due_at)


@on_dynamodb_local
def test_a_past_answer_rewritten_after_the_read_is_not_pruned(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = timedelta(days=1)
    stores.contacts.await_answer(PATIENT, "a1", NOW + timedelta(hours=1), now=NOW)
    later, moved = NOW + day, NOW + 3 * day
    contacts = DynamoDBPatientContacts(stores.table, stores.client, clinic_id="demo")
    read = contacts._table.get
    reads: list[str] = []

    def read_then_race(pk: str, sk: str) -> dict[str, Any] | None:
        found = read(pk, sk)
        reads.append(pk)
        if len(reads) == 1:
            # Another writer moves a1 to a later start between this read and the write.
            stores.contacts.await_answer(PATIENT, "a1", moved, now=NOW)
        return found

    monkeypatch.setattr(contacts._table, "get", read_then_race)
    contacts.await_answer(PATIENT, "a2", moved, now=later)
    assert len(reads) == 2  # the refused write read again
    assert stores.contacts.get(PATIENT) == Contact(PATIENT, awaiting={"a1": moved, "a2": moved})


# --- the table's items ---------------------------------------------------------------------


@on_dynamodb_local
def test_the_items_keep_to_the_key_space_and_expire(stores: Stores) -> None:
    due_at = NOW + timedelta(hours=8)
    stores.contacts.await_answer(PATIENT, "a1", NOW + timedelta(days=1), now=NOW)
    stores.contacts.set_opted_out(PATIENT, True, opted_out("e1"))
    stores.sent.remember("wamid.1", SentMessage("demo", "a1", "whatsapp", "Hola"))
    stores.deferred.defer(reminder("e2"), due_at)
    items = all_items(stores)

    contact = items[(f"demo#PATIENT#{PATIENT}", "CONTACT")]
    assert contact["opted_out"] is True
    assert contact["AW#a1"] == "2026-12-02T13:00:00+00:00"
    assert "expires_at" not in contact  # an opt-out is kept until ALTA
    sent = items[("SENT#wamid.1", "SENT")]
    assert sent["clinic_id"] == "demo"
    assert sent["expires_at"] == int((NOW + timedelta(days=7)).timestamp())
    assert "link" not in sent  # None is left out
    held = items[("demo#LATER#e2", "LATER")]
    assert held["gsi1pk"] == "demo#LATER"
    assert held["gsi1sk"] == "2026-12-01T21:00:00.000000Z#e2"
    assert held["expires_at"] == int((due_at + timedelta(days=7)).timestamp())
    assert ("OUTBOX#e1", "EVENT") in items
    assert len(items) == 4
