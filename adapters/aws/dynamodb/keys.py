"""The table's key space: partition and sort keys of every item kind, and key-safe instants.

Every key of a clinic's data, in the table and in both indexes, starts with `<clinic id>#`:
ids are per clinic, and a read built for one clinic cannot name another's item. Clinic ids
are lower case, the fixed prefixes upper case (`APPT#`, `OUTBOX#`), so the two never meet.
The outbox and the handled-event markers are the deployment's own ledgers, keyed by globally
unique event ids; the events in them name their clinic. So is the ledger of sent messages,
keyed by the provider's message id, each naming its clinic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from domain.appointment import Status
from domain.clinics import CLINIC_ID
from domain.text import matches

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

TRANSACTION_LIMIT: Final = 100
BATCH_WRITE_LIMIT: Final = 25
IDEMPOTENCY_TTL: Final = timedelta(hours=24)
# Longer than any redelivery: SQS keeps a message 14 days at most, but a consumer sees a
# duplicate within minutes (visibility timeouts, relay retries), never a week later.
PROCESSED_TTL: Final = timedelta(days=7)
OUTBOX_PARTITION: Final = "OUTBOX"
# A reply comes within days of its message; a held message goes out within hours of its due
# time, or it is stale (the appointment passed) and DynamoDB may drop it.
SENT_TTL: Final = timedelta(days=7)
DEFERRED_TTL: Final = timedelta(days=7)
# A waitlist entry is kept a quarter after its last date, to answer "what became of it".
WAITLIST_TTL: Final = timedelta(days=90)

APPOINTMENT_SK: Final = "APPT"
# The sort key of the per-cell lock items of releases before the day guards (`citas migrate`).
LOCK_SK: Final = "LOCK"
IDEMPOTENCY_SK: Final = "IDEM"
EVENT_SK: Final = "EVENT"
DOCTOR_SK: Final = "PROFILE"
REQUEST_SK: Final = "REQ"
PROCESSED_SK: Final = "DONE"
CONTACT_SK: Final = "CONTACT"
SENT_SK: Final = "SENT"
DEFERRED_SK: Final = "LATER"
WAITLIST_SK: Final = "ENTRY"
# The top-level copy of a held offer's expiry (an instant) that accepting is conditioned on;
# never `expires_at`, which is the table's TTL attribute.
OFFER_EXPIRES: Final = "offer_expires"
# A contact's awaited answers are top-level attributes `AW#<appointment id>` (ISO start): one
# UpdateItem can SET one and REMOVE others whether or not the item exists yet, where a
# nested map would first need creating.
AWAITING_PREFIX: Final = "AW#"
# Time off lives in its doctor's partition, next to the profile: one Query reads a schedule.
TIME_OFF_SK_PREFIX: Final = "TIMEOFF#"
# The profile attribute every schedule change bumps and every booking checks.
SCHEDULE_VERSION: Final = "schedule_version"
# The profile attribute with the doctor's blocks of time off not yet ended, by id.
TIME_OFF_MAP: Final = "time_off"
KEY_ATTRIBUTES: Final = frozenset({"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"})


def instant(value: datetime) -> str:
    """Fixed-width UTC, so that string order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso(value: datetime) -> str:
    """ISO 8601 in UTC, for instants that are data, not keys."""
    return value.astimezone(UTC).isoformat()


def epoch(value: datetime) -> int:
    """Whole seconds since the epoch: DynamoDB's TTL format."""
    return int(value.timestamp())


def key(pk: str, sk: str) -> dict[str, AttributeValueTypeDef]:
    """The table key of one item, as attribute values."""
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def appointment_pk(clinic_id: str, appointment_id: str) -> str:
    """The partition key of an appointment item."""
    return f"{clinic_id}#APPT#{appointment_id}"


def doctor_partition(clinic_id: str, doctor_id: str) -> str:
    """The gsi1 partition of a doctor's appointments."""
    return f"{clinic_id}#DOCTOR#{doctor_id}"


def country_status_partition(clinic_id: str, country: str, status: Status) -> str:
    """The gsi2 partition of a clinic's appointments of a country in one status."""
    return f"{clinic_id}#COUNTRY#{country}#STATUS#{status}"


def idempotency_pk(clinic_id: str, key: str) -> str:
    """The partition key of an idempotency record: keys are per clinic."""
    return f"{clinic_id}#IDEM#{key}"


def outbox_pk(event_id: str) -> str:
    """The partition key of an outbox event."""
    return f"OUTBOX#{event_id}"


def doctor_pk(clinic_id: str, doctor_id: str) -> str:
    """The partition key of a doctor's profile (the same text as its gsi1 partition)."""
    return f"{clinic_id}#DOCTOR#{doctor_id}"


def time_off_sk(time_off_id: str) -> str:
    """The sort key of a block of time off, inside its doctor's partition."""
    return f"{TIME_OFF_SK_PREFIX}{time_off_id}"


def time_off_partition(clinic_id: str, doctor_id: str) -> str:
    """The gsi1 partition of a doctor's time off, by start."""
    return f"{clinic_id}#TIMEOFF#{doctor_id}"


def request_pk(clinic_id: str, request_id: str) -> str:
    """The partition key of a booking request."""
    return f"{clinic_id}#REQ#{request_id}"


def clinic_of(pk: str) -> str | None:
    """The clinic a partition key belongs to, or None for the deployment's own ledgers."""
    head, sep, _ = pk.partition("#")
    # Fixed prefixes are upper case; clinic ids never are.
    return head if sep and matches(CLINIC_ID, head) else None


def processed_pk(key: str) -> str:
    """The partition key of a handled-event marker."""
    return f"DONE#{key}"


def contact_pk(clinic_id: str, patient_key: str) -> str:
    """The partition key of a phone's contact within a clinic (the key is a hash)."""
    return f"{clinic_id}#PATIENT#{patient_key}"


def sent_pk(message_id: str) -> str:
    """The partition key of a sent message, by the provider's message id."""
    return f"SENT#{message_id}"


def deferred_pk(clinic_id: str, event_id: str) -> str:
    """The partition key of a message held back by quiet hours."""
    return f"{clinic_id}#LATER#{event_id}"


def deferred_partition(clinic_id: str) -> str:
    """The gsi1 partition of a clinic's held messages, by due instant."""
    return f"{clinic_id}#LATER"


def waitlist_pk(clinic_id: str, waitlist_id: str) -> str:
    """The partition key of a waitlist entry."""
    return f"{clinic_id}#WAIT#{waitlist_id}"


def waitlist_partition(clinic_id: str, doctor_id: str) -> str:
    """The gsi1 partition of a doctor's waitlist entries, oldest first."""
    return f"{clinic_id}#WAITLIST#{doctor_id}"


def hold_partition(clinic_id: str) -> str:
    """The gsi2 partition of a clinic's held offers, by doctor and start (sparse)."""
    return f"{clinic_id}#HOLD"


def hold_position(doctor_id: str, start: datetime) -> str:
    """A bound of a doctor's holds in gsi2: `<doctor>#<start>` sorts before each of its ids.

    Doctor ids never hold `#`, which sorts before every character they may hold, so the
    bounds of one doctor never take in another's holds.
    """
    return f"{doctor_id}#{instant(start)}"
