"""Patient messages: what happened to a visit, told in Spanish and the clinic's local time.

Every message about an appointment ends with the patient's link and, when it asks for an
answer, notes that the appointment awaits one (an SMS reply names no appointment). Nothing
goes to a phone opted out of the clinic; nothing initiated by citas goes out between 21:00 and
08:00 on the doctor's clock (it is held until 08:00, unless the visit is sooner); a WhatsApp
message the channel refuses goes by SMS instead, at once, or later when WhatsApp reports the
delivery failed.

A message goes out only while what it says still holds: no booking message for an appointment
no longer `requested` (a waitlist booking is made confirmed; the clinic may confirm before the
message goes), no reminder of an old time. A `WaitlistOfferMade` (an event of no appointment)
asks the entry's patient to take the held slot, while that same offer is still live, with the
offer's link and Aceptar / Rechazar buttons; the phone then awaits an answer about the offer
(`offer_answer_key`). `WaitlistOfferAccepted` and `WaitlistOfferExpired` send nothing: the
patient's page or reply already answered, and a staff accept is told by the appointment's
usual `AppointmentConfirmed` message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from attrs import frozen

from domain import events as ev
from domain.appointment import Appointment, Status
from domain.cadence import send_time
from domain.clinics import ClinicProfile
from domain.errors import TemporarilyUnavailable
from domain.links import InvalidLink, LinkExpired, Purpose
from domain.messages import MessageContent, message_for, offer_message
from domain.patient import patient_key
from domain.replies import DeliveryFailure, Intent, button_payload, offer_button_payloads
from domain.use_cases.links import Links, is_current_offer
from domain.waitlist import WaitlistEntry, WaitStatus
from ports.clinics import ClinicDirectory
from ports.messaging import CHANNELS, Channel, MessageRefused, Notifier, OutboundMessage
from ports.patients import SentMessage, SentMessages
from ports.repositories import ClinicRepositories, ProcessedEvents
from ports.system import Clock

# The most held messages one tick sends per clinic; the rest go on the next tick.
HELD_BATCH = 100
_BUTTONS = (Intent.CONFIRM, Intent.CANCEL, Intent.RESCHEDULE)
# Events whose message asks an unconfirmed appointment to be confirmed.
_ASKS_UNCONFIRMED = (ev.AppointmentRequested, ev.ConfirmationRequested, ev.AppointmentAtRisk)
# Prefixes a waitlist id among a contact's awaited answers: an appointment id never starts so
# (ids are UUIDs), so an SMS answer can tell an offer from an appointment.
OFFER_ANSWER_PREFIX = "w-"


def offer_answer_key(waitlist_id: str) -> str:
    """The key under which a contact awaits an answer about an entry's offer."""
    return OFFER_ANSWER_PREFIX + waitlist_id


@frozen
class Delivery:
    """What sending one message came to: the channels it went out on."""

    channels: tuple[Channel, ...] = ()

    @property
    def sent(self) -> bool:
        """Whether it went out at all."""
        return bool(self.channels)


class PatientMessenger:
    """Tells patients, in Spanish and their clinic's time, what happened to their visit."""

    def __init__(
        self,
        clinics: ClinicDirectory,
        repositories: ClinicRepositories,
        notifier: Notifier,
        processed: ProcessedEvents,
        sent: SentMessages,
        links: Links,
        clock: Clock,
    ) -> None:
        self.clinics = clinics
        self.repositories = repositories
        self.notifier = notifier
        self.processed = processed
        self.sent = sent
        self.links = links
        self.clock = clock

    def handle(self, event: ev.Event) -> bool:
        """Send the message for `event` once; False if handled before, held or says nothing."""
        key = f"notify:{event.event_id}"
        # Of the events that name no appointment, only an offer speaks to a patient.
        speaks = event.appointment_id is not None or isinstance(event, ev.WaitlistOfferMade)
        if not speaks or self.processed.seen(key):
            return False
        clinic = self.clinic(event.clinic_id)
        delivery = self._deliver(clinic, event, hold_in_quiet_hours=True)
        # Sent before it is remembered: a crash in between sends twice, never zero times.
        self.processed.remember(key)
        return delivery.sent

    def send_held(self, clinic_id: str) -> int:
        """Send the clinic's messages held by quiet hours that are now due; how many went."""
        clinic = self.clinic(clinic_id)
        deferred = self.repositories.deferred(clinic_id)
        count = 0
        for held in deferred.due(self._now(), HELD_BATCH):
            key = f"notify-held:{held.event.event_id}"
            if not self.processed.seen(key):
                count += self._deliver(clinic, held.event, hold_in_quiet_hours=False).sent
                self.processed.remember(key)
            deferred.done(held.event.event_id)
        return count

    def fall_back(self, failure: DeliveryFailure) -> bool:
        """Send by SMS a WhatsApp message that failed to deliver; False if nothing to resend.

        Only while it still holds: never about a visit since cancelled (but the cancellation
        itself), moved or begun; never to an opted-out phone; never in quiet hours for a
        visit after 08:00 (the message is then dropped: the cadence and the page remain).
        """
        record = self.sent.find(failure.message_id)
        key = f"fallback:{failure.message_id}"
        if record is None or failure.recipient is None or self.processed.seen(key):
            return False
        clinic = self.clinic(record.clinic_id)
        sent = self._still_holds(clinic, record, failure.recipient) and self._resend(
            clinic, record, failure.recipient
        )
        self.processed.remember(key)
        return sent

    def _still_holds(self, clinic: ClinicProfile, record: SentMessage, phone: str) -> bool:
        found = self.repositories.contacts(clinic.clinic_id).get(patient_key(phone))
        if found is not None and found.opted_out:
            return False
        if record.appointment_id is None or record.kind == "reply":
            return True  # an answer to the patient's own message: at once, as it was
        if record.kind == "offer":
            return self._offer_holds(clinic, record, phone)
        appointment = self.repositories.appointments(clinic.clinic_id).get(record.appointment_id)
        if appointment is None or appointment.patient.phone != phone:
            return False
        now = self._now()
        if record.kind != "cancelled" and not (appointment.is_active and now < appointment.start):
            return False
        return send_time(now, appointment.start, appointment.time_zone) <= now

    def _offer_holds(self, clinic: ClinicProfile, record: SentMessage, phone: str) -> bool:
        """Whether an offer's message still holds: the offer its link names is live, for `phone`."""
        token = (record.link or "").rpartition("/")[2]
        now = self._now()
        try:
            claims = self.links.claims(token, purpose=Purpose.OFFER, now=now)
        except (InvalidLink, LinkExpired):
            return False
        entry = self.repositories.waitlist(clinic.clinic_id).get(claims.appointment_id)
        if entry is None or entry.patient.phone != phone or not _offer_live(entry, now):
            return False
        if not is_current_offer(claims, entry.offer):
            return False
        assert entry.offer is not None
        return send_time(now, entry.offer.start, entry.time_zone) <= now

    def _resend(self, clinic: ClinicProfile, record: SentMessage, phone: str) -> bool:
        message = OutboundMessage(
            channel="sms",
            phone=phone,
            text=record.text,
            clinic_id=record.clinic_id,
            appointment_id=record.appointment_id,
            link=record.link,
            origin=clinic.sms_number,
        )
        try:
            self.notifier.send(message)
        except MessageRefused:
            return False
        return True

    def clinic(self, clinic_id: str) -> ClinicProfile:
        """The served clinic, or TemporarilyUnavailable (not known here yet: tried again)."""
        clinic = self.clinics.get(clinic_id)
        if clinic is None:
            # Not known here yet (just added, this container's directory is older) or no
            # longer served: tried again, and in the dead-letter queue if it never comes.
            raise TemporarilyUnavailable(
                "the event's clinic is not served here (yet)", service="clinics"
            )
        return clinic

    def send(
        self,
        clinic: ClinicProfile,
        phone: str,
        content: MessageContent,
        *,
        appointment_id: str | None,
        token: str | None,
        channels: Sequence[Channel],
        link: str | None = None,
    ) -> Delivery:
        """Send `content` on each of `channels`; a refused WhatsApp message goes by SMS."""
        went: list[Channel] = []
        for channel in channels:
            if channel in went:
                continue
            # With an SMS in the same send, a WhatsApp failure needs no fallback later.
            keep = channel == "whatsapp" and "sms" not in channels
            if self._send_one(clinic, phone, content, channel, appointment_id, token, link, keep):
                went.append(channel)
            elif (
                channel == "whatsapp"
                and "sms" not in channels
                and self._send_one(clinic, phone, content, "sms", appointment_id, token, link)
            ):
                # Refused for good on WhatsApp (not a WhatsApp number): the SMS goes instead.
                went.append("sms")
        return Delivery(tuple(went))

    def _send_one(
        self,
        clinic: ClinicProfile,
        phone: str,
        content: MessageContent,
        channel: Channel,
        appointment_id: str | None,
        token: str | None,
        link: str | None,
        keep: bool = False,
    ) -> bool:
        buttons: tuple[str, ...] = ()
        if channel == "whatsapp" and content.asks and token is not None:
            buttons = (
                offer_button_payloads(token)
                if content.kind == "offer"
                else tuple(button_payload(intent, token) for intent in _BUTTONS)
            )
        message = OutboundMessage(
            channel=channel,
            phone=phone,
            text=content.text,
            clinic_id=clinic.clinic_id,
            appointment_id=appointment_id,
            link=link,
            template=content.template,
            parameters=content.parameters,
            buttons=buttons,
            origin=clinic.sms_number if channel == "sms" else clinic.whatsapp_phone_number_id,
        )
        try:
            message_id = self.notifier.send(message)
        except MessageRefused:
            # For good (not a number the channel reaches): retrying would fail the same way.
            return False
        if keep and message_id:
            # Kept for a failure WhatsApp reports later: the SMS fallback resends this text.
            self.sent.remember(
                message_id,
                SentMessage(
                    clinic.clinic_id, appointment_id, channel, content.text, link, content.kind
                ),
            )
        return True

    def _deliver(
        self, clinic: ClinicProfile, event: ev.Event, *, hold_in_quiet_hours: bool
    ) -> Delivery:
        if isinstance(event, ev.WaitlistOfferMade):
            return self._deliver_offer(clinic, event, hold_in_quiet_hours=hold_in_quiet_hours)
        return self._deliver_visit(clinic, event, hold_in_quiet_hours=hold_in_quiet_hours)

    def _deliver_visit(
        self, clinic: ClinicProfile, event: ev.Event, *, hold_in_quiet_hours: bool
    ) -> Delivery:
        clinic_id = clinic.clinic_id
        assert event.appointment_id is not None
        # Read through the event's own clinic: its ids mean nothing in any other.
        appointment = self.repositories.appointments(clinic_id).get(event.appointment_id)
        if appointment is None or not _still_true(event, appointment):
            return Delivery()
        doctor = self.repositories.doctors(clinic_id).get(appointment.doctor_id)
        token = self.links.token(appointment)
        link = self.links.url(clinic, token)
        content = message_for(
            event,
            clinic_name=clinic.name,
            doctor_name=doctor.name if doctor is not None else "tu médico",
            time_zone=appointment.time_zone,
            link=link,
        )
        if content is None or self._opted_out(clinic_id, appointment.patient.key):
            return Delivery()
        now = self._now()
        if hold_in_quiet_hours and self._held(
            clinic_id, event, send_time(now, appointment.start, appointment.time_zone), now
        ):
            return Delivery()
        delivery = self.send(
            clinic,
            appointment.patient.phone,
            content,
            appointment_id=appointment.appointment_id,
            token=token,
            channels=_channels(clinic, event),
            link=link,
        )
        if delivery.sent and content.asks:
            self.repositories.contacts(clinic_id).await_answer(
                appointment.patient.key, appointment.appointment_id, appointment.start, now=now
            )
        return delivery

    def _deliver_offer(
        self, clinic: ClinicProfile, event: ev.WaitlistOfferMade, *, hold_in_quiet_hours: bool
    ) -> Delivery:
        """Ask the entry's patient to take the held slot, while this very offer is live."""
        clinic_id = clinic.clinic_id
        entry = self.repositories.waitlist(clinic_id).get(str(event.data["waitlist_id"]))
        now = self._now()
        if entry is None or not _offer_live(entry, now):
            return Delivery()
        offer = entry.offer
        assert offer is not None
        if offer.appointment_id != event.data.get("appointment_id"):
            return Delivery()  # a later offer of the entry: its own event tells it
        if self._opted_out(clinic_id, entry.patient.key):
            return Delivery()
        # The use case held the slot from 08:00 when it was offered in quiet hours.
        if hold_in_quiet_hours and self._held(
            clinic_id, event, send_time(now, offer.start, entry.time_zone), now
        ):
            return Delivery()
        doctor = self.repositories.doctors(clinic_id).get(entry.doctor_id)
        token = self.links.offer_token(entry)
        link = self.links.url(clinic, token)
        content = offer_message(
            clinic_name=clinic.name,
            doctor_name=doctor.name if doctor is not None else "tu médico",
            time_zone=entry.time_zone,
            start=offer.start,
            expires_at=offer.expires_at,
            now=now,
            link=link,
        )
        delivery = self.send(
            clinic,
            entry.patient.phone,
            content,
            appointment_id=offer.appointment_id,
            token=token,
            channels=_channels(clinic, event),
            link=link,
        )
        if delivery.sent:
            # An SMS SI / NO names nothing: the contact notes the offer, until its hold ends.
            self.repositories.contacts(clinic_id).await_answer(
                entry.patient.key, offer_answer_key(entry.waitlist_id), offer.expires_at, now=now
            )
        return delivery

    def _opted_out(self, clinic_id: str, key: str) -> bool:
        contact = self.repositories.contacts(clinic_id).get(key)
        return contact is not None and contact.opted_out

    def _held(self, clinic_id: str, event: ev.Event, due: datetime, now: datetime) -> bool:
        """Hold the message of `event` for the tick if it may only go out at `due`, later."""
        if due <= now:
            return False
        # Quiet hours, and the visit is after 08:00: the tick sends it then.
        self.repositories.deferred(clinic_id).defer(event, due)
        return True

    def _now(self) -> datetime:
        return self.clock.now()


def _channels(clinic: ClinicProfile, event: ev.Event) -> tuple[Channel, ...]:
    channels = tuple(c for c in CHANNELS if c in clinic.channels)
    channels = tuple(sorted(channels, key=clinic.channels.index))
    # At risk: the patient may not read the usual channel; the reminder goes on every one.
    return channels if isinstance(event, ev.AppointmentAtRisk) else channels[:1]


def _offer_live(entry: WaitlistEntry, now: datetime) -> bool:
    return (
        entry.status is WaitStatus.OFFERED and entry.offer is not None and entry.offer.is_live(now)
    )


def _still_true(event: ev.Event, appointment: Appointment) -> bool:
    # Events can arrive late or out of order (at-least-once delivery, one stream shard per
    # outbox item), so a message goes out only while what it says still holds: no "we got
    # your booking" after a cancellation or once confirmed (a waitlist booking is made
    # confirmed), no reminder or old time after a reschedule, no "still unconfirmed" once
    # confirmed.
    if isinstance(event, ev.AppointmentCancelled):
        return True
    if isinstance(event, _ASKS_UNCONFIRMED) and appointment.status is not Status.REQUESTED:
        return False
    return appointment.is_active and _iso_equal(event.data["start"], appointment.start)


def _iso_equal(text: str, instant: datetime) -> bool:
    return datetime.fromisoformat(text) == instant
