"""In-memory patient contacts, sent messages and deferred messages, under the store's lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from attrs import evolve

from adapters.memory.store import MemoryStore
from domain.clinics import require_clinic
from domain.events import Event
from ports.patients import Contact, DeferredMessage, SentMessage


class InMemoryPatientContacts:
    """One clinic's contacts (opt-out flag, awaited answers) in a `MemoryStore`."""

    def __init__(self, store: MemoryStore, *, clinic_id: str) -> None:
        self._store = store
        self._clinic = clinic_id

    def get(self, patient_key: str) -> Contact | None:
        """The contact, or None."""
        with self._store.lock:
            found = self._store.contacts.get((self._clinic, patient_key))
        # A copy of the map: the caller's Contact never aliases the stored one.
        return evolve(found, awaiting=dict(found.awaiting)) if found is not None else None

    def await_answer(
        self, patient_key: str, appointment_id: str, start: datetime, *, now: datetime
    ) -> None:
        """Note the awaited answer and drop those whose start is before `now`."""
        key = (self._clinic, patient_key)
        with self._store.lock:
            contact = self._store.contacts.get(key) or Contact(patient_key)
            awaiting = {**contact.awaiting, appointment_id: start}
            kept = {k: v for k, v in awaiting.items() if v >= now}
            self._store.contacts[key] = evolve(contact, awaiting=kept)

    def answered(self, patient_key: str, appointment_id: str) -> None:
        """Forget one awaited answer (absent is fine; an unknown contact stays unknown)."""
        key = (self._clinic, patient_key)
        with self._store.lock:
            contact = self._store.contacts.get(key)
            if contact is None or appointment_id not in contact.awaiting:
                return
            kept = {k: v for k, v in contact.awaiting.items() if k != appointment_id}
            self._store.contacts[key] = evolve(contact, awaiting=kept)

    def set_opted_out(self, patient_key: str, opted_out: bool, event: Event | None) -> bool:
        """Set the flag and keep `event` in the outbox, only if the flag changes."""
        if event is not None:
            require_clinic(self._clinic, event.clinic_id, "an event")
        key = (self._clinic, patient_key)
        with self._store.lock:
            contact = self._store.contacts.get(key)
            # Opting in a phone never heard of is no change: nothing is created for it.
            if (contact.opted_out if contact is not None else False) == opted_out:
                return False
            self._store.contacts[key] = evolve(contact or Contact(patient_key), opted_out=opted_out)
            if event is not None:
                self._store.outbox[event.event_id] = event
            return True


class InMemorySentMessages:
    """The deployment's ledger of outbound messages in a `MemoryStore` (never expires)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def remember(self, message_id: str, message: SentMessage) -> None:
        """Keep `message` under `message_id`."""
        with self._store.lock:
            self._store.sent[message_id] = message

    def find(self, message_id: str) -> SentMessage | None:
        """The message sent under `message_id`, or None."""
        with self._store.lock:
            return self._store.sent.get(message_id)


class InMemoryDeferredMessages:
    """One clinic's messages held back by quiet hours, in a `MemoryStore`."""

    def __init__(self, store: MemoryStore, *, clinic_id: str) -> None:
        self._store = store
        self._clinic = clinic_id

    def defer(self, event: Event, due_at: datetime) -> None:
        """Hold the message of `event` until `due_at`; the same event again changes nothing."""
        require_clinic(self._clinic, event.clinic_id, "an event")
        with self._store.lock:
            self._store.deferred.setdefault(
                (self._clinic, event.event_id), DeferredMessage(event, due_at)
            )

    def due(self, now: datetime, limit: int) -> Sequence[DeferredMessage]:
        """Up to `limit` held messages due at or before `now`, oldest due first."""
        with self._store.lock:
            found = [
                m
                for (clinic, _), m in self._store.deferred.items()
                if clinic == self._clinic and m.due_at <= now
            ]
        # The DynamoDB index's order: due instant, then event id.
        found.sort(key=lambda m: (m.due_at, m.event.event_id))
        return found[: max(limit, 0)]

    def done(self, event_id: str) -> None:
        """Forget the held message of `event_id` (absent is fine)."""
        with self._store.lock:
            self._store.deferred.pop((self._clinic, event_id), None)
