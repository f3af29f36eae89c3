"""DynamoDB adapters: one table, every guard a condition inside one transaction.

Items (`pk` / `sk` are the table keys; `gsi1*` / `gsi2*` the two GSIs of `dynamodb.tf`). Every
key of a clinic's data, in the table and in both indexes, starts with `<clinic>#` (`keys`):

- appointment `<clinic>#APPT#<id>` / `APPT`: the snapshot with `version` and `clinic_id`;
  `gsi1pk=<clinic>#DOCTOR#<doctor>`, `gsi1sk=<start>#<id>` (a doctor's days) and
  `gsi2pk=<clinic>#COUNTRY#<cc>#STATUS#<status>`, `gsi2sk=<start>#<id>` (country-status lists).
- doctor day guard `<clinic>#DOCDAY#<doctor>#<YYYY-MM-DD>` / `DAY` (24 h from 06:00 UTC of that
  date, see `guards`): one attribute `HHMM` per 5-minute cell an active appointment holds,
  valued with the owner's 4-character tag; `expires_at` (TTL, the day's end + 1 day).
- patient day guard `<clinic>#PATDAY#<patient key>#<YYYY-MM-DD>` / `DAY`: the same; the key is
  a hash of the phone, never the phone. Per clinic: a phone is one patient within a clinic.
- idempotency key `<clinic>#IDEM#<key>` / `IDEM`: `fingerprint`, `appointment_id`,
  `expires_at` (booking + 24 h; DynamoDB deletes within a day or two after).
- doctor `<clinic>#DOCTOR#<id>` / `PROFILE`; booking request `<clinic>#REQ#<id>` / `REQ`.
- outbox event `OUTBOX#<event id>` / `EVENT`: `envelope` (the JSON envelope, with its
  `clinic_id`), `clinic_id`, `outbox=1` (a marker; the relay's stream filter matches INSERTs
  whose `pk` starts `OUTBOX#`), `gsi1pk=OUTBOX`, `gsi1sk=<occurred_at>#<event id>` (pending
  events oldest first, no Scan). The deployment's own work list, shared by every clinic:
  event ids are globally unique, and only the relay reads it.
- handled-event marker `DONE#<consumer>:<event id>` / `DONE`: `expires_at` (a week later);
  the consumers' ledger, keyed by the globally unique event id like the outbox.
- contact `<clinic>#PATIENT#<patient key>` / `CONTACT`, sent message `SENT#<message id>` /
  `SENT` (the deployment's ledger, by provider message id) and held message
  `<clinic>#LATER#<event id>` / `LATER` (`gsi1pk=<clinic>#LATER`, `gsi1sk=<due>#<event id>`):
  see `patients`.
- waitlist entry `<clinic>#WAIT#<id>` / `ENTRY`: the snapshot (the offer a nested map),
  `version`; `gsi1pk=<clinic>#WAITLIST#<doctor>`, `gsi1sk=<created_at>#<id>` (oldest first);
  while an offer holds a slot, `offer_expires` (the conditions' clock) and
  `gsi2pk=<clinic>#HOLD`, `gsi2sk=<doctor>#<start>#<id>` (availability's holds, the sweep);
  `expires_at` (TTL) 90 days after its last date. The hold itself is the doctor's guard cells,
  valued with the tag of the appointment the offer would become: see `waitlist`.

Instants in sort keys are fixed-width UTC (`2026-12-02T14:00:00.000000Z`) so that string
order is time order and `<start>#<id>` sorts after the bare `<start>` used as a bound.

Modules: `keys` (the key space), `items` (item mappers), `transaction` (the builder and its
`Role`s), `table` (every call, errors translated), `appointments` (the appointment
repository), `guards` (the day guards that make overlaps impossible), `patients` (contacts,
sent and held messages), `waitlist` (entries and the holds of their offers) and
`repositories` (doctors, booking requests, outbox, handled events). `adapters.aws.migrate`
(`citas migrate`) moves the per-cell lock items of earlier releases to the guards.

A transaction cancelled only by contention (`TransactionConflict`) wrote nothing and is sent
again (`adapters.aws.client.TRANSACTION_RETRY`: 5 attempts in all, a few jittered
milliseconds apart) before the caller gets `TemporarilyUnavailable`. Throttling, 5xx,
timeouts and connection errors become `TemporarilyUnavailable` at once (botocore has already
retried them); any other error is a bug and is re-raised as is.

botocore already makes retried `TransactWriteItems` idempotent: it generates one
`ClientRequestToken` per call and reuses it on each retry, so a commit whose answer was lost
is not replayed as a (false) condition failure.
"""

from adapters.aws.client import (
    CLIENT_CONFIG,
    RETRYABLE_CODES,
    LazyClient,
    error_code,
    is_retryable,
    translate_errors,
)
from adapters.aws.dynamodb.appointments import DynamoDBAppointmentRepository
from adapters.aws.dynamodb.doctors import DynamoDBDoctorRepository
from adapters.aws.dynamodb.guards import (
    GUARD_SK,
    GUARD_TTL,
    cell_name,
    doctor_guard_pk,
    owner_tag,
    patient_guard_pk,
)
from adapters.aws.dynamodb.items import (
    appointment_from_item,
    appointment_to_item,
    doctor_from_item,
    doctor_to_item,
    event_from_item,
    event_to_item,
    idempotency_from_item,
    idempotency_to_item,
    request_from_item,
    request_to_item,
)
from adapters.aws.dynamodb.keys import (
    APPOINTMENT_SK,
    BATCH_WRITE_LIMIT,
    CONTACT_SK,
    DEFERRED_SK,
    DEFERRED_TTL,
    DOCTOR_SK,
    EVENT_SK,
    IDEMPOTENCY_SK,
    IDEMPOTENCY_TTL,
    OUTBOX_PARTITION,
    PROCESSED_SK,
    PROCESSED_TTL,
    REQUEST_SK,
    SENT_SK,
    SENT_TTL,
    TRANSACTION_LIMIT,
    appointment_pk,
    contact_pk,
    country_status_partition,
    deferred_partition,
    deferred_pk,
    doctor_partition,
    idempotency_pk,
    outbox_pk,
    processed_pk,
    request_pk,
    sent_pk,
)
from adapters.aws.dynamodb.patients import (
    DynamoDBDeferredMessages,
    DynamoDBPatientContacts,
    DynamoDBSentMessages,
)
from adapters.aws.dynamodb.repositories import (
    DynamoDBBookingRequestRepository,
    DynamoDBEventOutbox,
    DynamoDBProcessedEvents,
    DynamoDBRepositories,
)
from adapters.aws.dynamodb.table import default_client
from adapters.aws.dynamodb.waitlist import DynamoDBWaitlistRepository

__all__ = [
    "APPOINTMENT_SK",
    "BATCH_WRITE_LIMIT",
    "CLIENT_CONFIG",
    "CONTACT_SK",
    "DEFERRED_SK",
    "DEFERRED_TTL",
    "DOCTOR_SK",
    "EVENT_SK",
    "GUARD_SK",
    "GUARD_TTL",
    "IDEMPOTENCY_SK",
    "IDEMPOTENCY_TTL",
    "OUTBOX_PARTITION",
    "PROCESSED_SK",
    "PROCESSED_TTL",
    "REQUEST_SK",
    "RETRYABLE_CODES",
    "SENT_SK",
    "SENT_TTL",
    "TRANSACTION_LIMIT",
    "DynamoDBAppointmentRepository",
    "DynamoDBBookingRequestRepository",
    "DynamoDBDeferredMessages",
    "DynamoDBDoctorRepository",
    "DynamoDBEventOutbox",
    "DynamoDBPatientContacts",
    "DynamoDBProcessedEvents",
    "DynamoDBRepositories",
    "DynamoDBSentMessages",
    "DynamoDBWaitlistRepository",
    "LazyClient",
    "appointment_from_item",
    "appointment_pk",
    "appointment_to_item",
    "cell_name",
    "contact_pk",
    "country_status_partition",
    "default_client",
    "deferred_partition",
    "deferred_pk",
    "doctor_from_item",
    "doctor_guard_pk",
    "doctor_partition",
    "doctor_to_item",
    "error_code",
    "event_from_item",
    "event_to_item",
    "idempotency_from_item",
    "idempotency_pk",
    "idempotency_to_item",
    "is_retryable",
    "outbox_pk",
    "owner_tag",
    "patient_guard_pk",
    "processed_pk",
    "request_from_item",
    "request_pk",
    "request_to_item",
    "sent_pk",
    "translate_errors",
]
