"""What the patient-answer use cases need from storage: contacts, sent messages, deferrals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from attrs import field, frozen

from domain.events import Event


@frozen
class Contact:
    """One phone within one clinic, by its pseudonym (`Patient.key`, a hash of the phone).

    `opted_out`: the phone wrote BAJA/STOP and gets no message from this clinic until ALTA.
    `awaiting`: the appointments the patient was asked to answer about, by id, with their start
    (an SMS reply names no appointment: it applies to the next of these still active).
    """

    patient_key: str
    opted_out: bool = False
    awaiting: Mapping[str, datetime] = field(factory=dict)


class PatientContacts(Protocol):
    """One clinic's contacts. Each method is one atomic step."""

    def get(self, patient_key: str) -> Contact | None:
        """The contact, or None if the clinic never wrote to or heard from the phone."""
        ...

    def await_answer(
        self, patient_key: str, appointment_id: str, start: datetime, *, now: datetime
    ) -> None:
        """Note that the patient was asked about `appointment_id` (starting at `start`).

        Entries whose start is before `now` are dropped in the same write, so a contact
        never grows without bound.
        """
        ...

    def answered(self, patient_key: str, appointment_id: str) -> None:
        """Forget `appointment_id` among the contact's awaited answers (absent is fine)."""
        ...

    def set_opted_out(self, patient_key: str, opted_out: bool, event: Event | None) -> bool:
        """Opt the phone out (True) or back in; whether it changed.

        `event` (PatientOptedOut) is committed to the outbox in the same write, only when the
        flag changed.
        """
        ...


@frozen
class SentMessage:
    """What was sent on a channel under a provider's message id (no phone: the reply has it)."""

    clinic_id: str
    appointment_id: str | None
    channel: str
    text: str
    link: str | None = None
    # The message's kind (domain.messages: `booked`, `cancelled`, `reply`, ...): whether it
    # still holds when a failure is reported later.
    kind: str | None = None


class SentMessages(Protocol):
    """The deployment's ledger of outbound messages, by provider message id (kept 7 days)."""

    def remember(self, message_id: str, message: SentMessage) -> None:
        """Keep `message` under the provider's `message_id`."""
        ...

    def find(self, message_id: str) -> SentMessage | None:
        """The message sent under `message_id`, or None."""
        ...


@frozen
class DeferredMessage:
    """An event whose patient message falls in quiet hours, and when it may go out."""

    event: Event
    due_at: datetime


class DeferredMessages(Protocol):
    """One clinic's messages held back by quiet hours."""

    def defer(self, event: Event, due_at: datetime) -> None:
        """Hold the message of `event` until `due_at` (again for the same event: no change)."""
        ...

    def due(self, now: datetime, limit: int) -> Sequence[DeferredMessage]:
        """Held messages whose `due_at` is at or before `now`, oldest due first."""
        ...

    def done(self, event_id: str) -> None:
        """Forget the held message of `event_id` (absent is fine)."""
        ...
