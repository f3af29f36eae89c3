"""Patients' replies by SMS and WhatsApp: SI confirms, NO cancels, BAJA opts out, ALTA back in.

A text reply names no appointment: it applies to the phone's next active appointment that
awaits an answer (one the patient was asked about), within the clinic whose number it was
sent to. A WhatsApp button names its appointment with the link token in its payload. Every
inbound message is handled once (by the provider's message id); anything not understood, or
with nothing to apply to, gets one help reply. An opted-out phone gets no reply, except the
confirmation of BAJA itself and of ALTA.

A live waitlist offer the phone was asked about comes first (it is the most time-critical):
SI takes it (the appointment is booked confirmed), NO lets it go (the entry waits again); a
SI or NO up to `LATE_OFFER_ANSWER` after its hold ran out is told it came too late, and
changes nothing. An offer's buttons carry its offer token, which acts only for the entry's
own phone, in its own clinic, on the very offer it was sent for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from attrs import frozen

from domain import events as ev
from domain.appointment import Appointment, Status
from domain.clinics import ClinicProfile
from domain.commands import CancelAppointment, ChangeStatus
from domain.errors import CitasError, NotFound, PatientDoubleBooked, TemporarilyUnavailable
from domain.links import InvalidLink, LinkExpired, Purpose
from domain.messages import MessageContent, Reply, local_when, reply_for
from domain.patient import patient_key
from domain.replies import InboundMessage, Intent, button_intent, intent_of
from domain.use_cases.clinic import Clinic
from domain.use_cases.links import is_current_offer
from domain.use_cases.messenger import OFFER_ANSWER_PREFIX, PatientMessenger, offer_answer_key
from domain.waitlist import WaitlistEntry, WaitStatus
from ports.patients import Contact, PatientContacts
from ports.repositories import ProcessedEvents
from ports.system import Clock, IdGenerator

# How long after an offer's hold ran out a SI / NO is still read as about that offer (and
# told it came too late) rather than applied to an appointment: the offer's message was
# most likely the last thing the patient read.
LATE_OFFER_ANSWER: Final = timedelta(hours=2)
# What a SI / NO / anything else does to an offer; the rest (REPROGRAMAR) is about visits.
_OFFER_INTENTS: Final = frozenset({Intent.CONFIRM, Intent.CANCEL, Intent.UNKNOWN})


@frozen
class ReplyOutcome:
    """What an inbound message came to, for the logs (ids and codes only)."""

    intent: Intent
    reply: Reply | None
    appointment_id: str | None = None
    duplicate: bool = False
    replied: bool = False
    reply_failed: bool = False


@frozen
class _OfferAnswer:
    """The waitlist entry an answer is about; `live`: the offer asked about is still held."""

    entry: WaitlistEntry
    live: bool


class PatientReplies:
    """Applies what patients write back, and answers them on the channel they used."""

    def __init__(
        self,
        services: Callable[[str], Clinic],
        messenger: PatientMessenger,
        processed: ProcessedEvents,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._services = services
        self._messenger = messenger
        self._processed = processed
        self._clock = clock
        self._ids = ids

    def handle(self, clinic: ClinicProfile, message: InboundMessage) -> ReplyOutcome:
        """Apply `message`, sent to `clinic`, once; replay of a seen message id does nothing.

        The message is remembered as soon as what it asked is done, before the answer goes:
        a retry after a failed answer (a throttled channel) must not pick the next visit and
        cancel that one too. Such an answer is lost (`reply_failed`), never the change.
        """
        key = f"inbound:{message.channel}:{message.message_id}"
        if self._processed.seen(key):
            return ReplyOutcome(Intent.UNKNOWN, None, duplicate=True)
        outcome = self._apply(clinic, message, lambda: self._processed.remember(key))
        return outcome

    def _apply(
        self, clinic: ClinicProfile, message: InboundMessage, done: Callable[[], None]
    ) -> ReplyOutcome:
        contacts = self._messenger.repositories.contacts(clinic.clinic_id)
        phone_key = patient_key(message.sender)
        contact = contacts.get(phone_key)
        button = button_intent(message.button) if message.button else None
        intent = button[0] if button else intent_of(message.text)
        if intent is Intent.OPT_OUT or intent is Intent.OPT_IN:
            self._opt(clinic, contacts, phone_key, intent)
            done()
            # Said even to a phone now opted out: it is the answer to its own BAJA.
            reply = Reply.OPTED_OUT if intent is Intent.OPT_OUT else Reply.OPTED_IN
            return self._answer(clinic, message, intent, reply, None, opted_out=False)
        opted_out = contact is not None and contact.opted_out
        if button is not None:
            offered = self._offer_by_token(clinic, message.sender, button[1])
        else:
            offered = self._awaited_offer(clinic, contacts, contact, intent)
        if offered is not None:
            return self._on_offer(clinic, contacts, message, intent, offered, opted_out, done)
        if button is not None:
            target = self._by_token(clinic, message.sender, button[1])
        else:
            target = self._next_awaiting(clinic, contacts, contact, intent)
        if target is None:
            done()
            # Nothing this phone may answer about here: help, with no link to give.
            reply = Reply.NOTHING_PENDING if intent is not Intent.UNKNOWN else Reply.HELP
            return self._answer(clinic, message, intent, reply, None, opted_out)
        reply = self._act(clinic, target, intent)
        if reply is Reply.CANCELLED:
            # A confirmed visit still takes an answer (a later NO cancels it); a cancelled one
            # takes none.
            contacts.answered(phone_key, target.appointment_id)
        done()
        return self._answer(clinic, message, intent, reply, target, opted_out)

    def _opt(
        self, clinic: ClinicProfile, contacts: PatientContacts, phone_key: str, intent: Intent
    ) -> None:
        out = intent is Intent.OPT_OUT
        event = (
            ev.PatientOptedOut(
                event_id=self._ids.new_id(),
                clinic_id=clinic.clinic_id,
                appointment_id=None,
                version=1,
                occurred_at=self._clock.now(),
                data={"patient_key": phone_key},
            )
            if out
            else None
        )
        contacts.set_opted_out(phone_key, out, event)

    def _by_token(self, clinic: ClinicProfile, sender: str, token: str) -> Appointment | None:
        try:
            claims = self._messenger.links.claims(
                token, purpose=Purpose.MANAGE, now=self._clock.now()
            )
        except (InvalidLink, LinkExpired):
            return None
        if claims.clinic_id != clinic.clinic_id:
            return None  # a payload of another clinic's message: not this number's to apply
        appointment = self._get(clinic, claims.appointment_id)
        # The button was pressed on the phone the message went to; any other is not the patient.
        if appointment is None or appointment.patient.phone != sender:
            return None
        return appointment

    def _next_awaiting(
        self,
        clinic: ClinicProfile,
        contacts: PatientContacts,
        contact: Contact | None,
        intent: Intent,
    ) -> Appointment | None:
        if contact is None:
            return None
        now = self._clock.now()
        ahead: list[Appointment] = []
        for appointment_id, start in sorted(contact.awaiting.items(), key=lambda kv: kv[1]):
            if start <= now or appointment_id.startswith(OFFER_ANSWER_PREFIX):
                continue  # past, or an offer's (answered above)
            appointment = self._get(clinic, appointment_id)
            if appointment is not None and appointment.is_active and appointment.start > now:
                ahead.append(appointment)
            else:
                # Cancelled, moved into the past, gone: nothing to answer about any more.
                contacts.answered(contact.patient_key, appointment_id)
        ahead.sort(key=lambda a: a.start)
        if intent is Intent.CONFIRM:
            # A yes answers the soonest visit still waiting for one; with none, the soonest
            # (already confirmed: it is told so).
            waiting = [a for a in ahead if a.status is Status.REQUESTED]
            ahead = waiting or ahead
        return ahead[0] if ahead else None

    def _get(self, clinic: ClinicProfile, appointment_id: str) -> Appointment | None:
        try:
            return self._services(clinic.clinic_id).get(appointment_id)
        except NotFound:
            return None

    def _act(self, clinic: ClinicProfile, target: Appointment, intent: Intent) -> Reply:
        services = self._services(clinic.clinic_id)
        try:
            if intent is Intent.CONFIRM:
                if target.status is Status.CONFIRMED:
                    return Reply.ALREADY_CONFIRMED
                services.change_status(
                    ChangeStatus(target.appointment_id, Status.CONFIRMED, by_patient=True)
                )
                return Reply.CONFIRMED
            if intent is Intent.CANCEL:
                services.cancel(CancelAppointment(target.appointment_id, by_patient=True))
                return Reply.CANCELLED
        except TemporarilyUnavailable:
            raise  # tried again with the whole message
        except CitasError:
            return Reply.REFUSED
        if intent is Intent.RESCHEDULE:
            return Reply.RESCHEDULE
        return Reply.HELP

    def _answer(
        self,
        clinic: ClinicProfile,
        message: InboundMessage,
        intent: Intent,
        reply: Reply,
        target: Appointment | None,
        opted_out: bool,
    ) -> ReplyOutcome:
        appointment_id = target.appointment_id if target is not None else None
        if opted_out:
            return ReplyOutcome(intent, reply, appointment_id)
        token = link = doctor_name = when = None
        if target is not None:
            token = self._messenger.links.token(target)
            link = self._messenger.links.url(clinic, token)
            doctor_name = self._doctor_name(clinic, target.doctor_id)
            when = local_when(target.start, target.time_zone)
        content = reply_for(
            reply, clinic_name=clinic.name, doctor_name=doctor_name, when=when, link=link
        )
        return self._send_answer(
            clinic, message, intent, reply, content, appointment_id, token, link
        )

    def _send_answer(
        self,
        clinic: ClinicProfile,
        message: InboundMessage,
        intent: Intent,
        reply: Reply,
        content: MessageContent,
        appointment_id: str | None,
        token: str | None,
        link: str | None,
    ) -> ReplyOutcome:
        try:
            delivery = self._messenger.send(
                clinic,
                message.sender,
                content,
                appointment_id=appointment_id,
                token=token,
                channels=(message.channel,),
                link=link,
            )
        except TemporarilyUnavailable:
            # What the patient asked is done and remembered; only this answer is lost.
            return ReplyOutcome(intent, reply, appointment_id, reply_failed=True)
        return ReplyOutcome(intent, reply, appointment_id, replied=delivery.sent)

    def _doctor_name(self, clinic: ClinicProfile, doctor_id: str) -> str:
        doctor = self._services(clinic.clinic_id).doctors.get(doctor_id)
        return doctor.name if doctor is not None else "tu médico"

    # --- waitlist offers -------------------------------------------------------------------

    def _entry(self, clinic: ClinicProfile, waitlist_id: str) -> WaitlistEntry | None:
        try:
            return self._services(clinic.clinic_id).waitlist_entry(waitlist_id)
        except NotFound:
            return None

    def _awaited_offer(
        self,
        clinic: ClinicProfile,
        contacts: PatientContacts,
        contact: Contact | None,
        intent: Intent,
    ) -> _OfferAnswer | None:
        """The offer a text answer is about: a live one (the soonest to end), else one just over."""
        if contact is None or intent not in _OFFER_INTENTS:
            return None
        now = self._clock.now()
        found: list[tuple[datetime, _OfferAnswer]] = []
        for key, expires_at in contact.awaiting.items():
            if not key.startswith(OFFER_ANSWER_PREFIX):
                continue
            entry = self._entry(clinic, key.removeprefix(OFFER_ANSWER_PREFIX))
            settled = entry is not None and entry.status in (
                WaitStatus.BOOKED,
                WaitStatus.WITHDRAWN,
            )
            if entry is None or settled or now >= expires_at + LATE_OFFER_ANSWER:
                # Taken, withdrawn or long over: the next SI / NO is about appointments.
                contacts.answered(contact.patient_key, key)
                continue
            offer = entry.offer
            live = (
                entry.status is WaitStatus.OFFERED
                and offer is not None
                and offer.is_live(now)
                and int(offer.expires_at.timestamp()) == int(expires_at.timestamp())
            )
            found.append((expires_at, _OfferAnswer(entry, live)))
        live_ones = sorted((f for f in found if f[1].live), key=lambda f: f[0])
        if live_ones:
            return live_ones[0][1]
        # Anything else with no live offer is for the appointments (help included).
        ended = sorted(found, key=lambda f: f[0], reverse=True)
        return ended[0][1] if ended and intent is not Intent.UNKNOWN else None

    def _offer_by_token(
        self, clinic: ClinicProfile, sender: str, token: str
    ) -> _OfferAnswer | None:
        """The offer a button's token names, if it is this clinic's and `sender` its patient."""
        now = self._clock.now()
        expired = False
        try:
            claims = self._messenger.links.claims(token, purpose=Purpose.OFFER, now=now)
        except LinkExpired as e:
            claims, expired = e.claims, True
        except InvalidLink:
            return None
        if claims.clinic_id != clinic.clinic_id:
            return None
        entry = self._entry(clinic, claims.appointment_id)
        if entry is None or entry.patient.phone != sender or entry.status is WaitStatus.WITHDRAWN:
            return None
        live = (
            not expired
            and entry.status is WaitStatus.OFFERED
            and entry.offer is not None
            and entry.offer.is_live(now)
            and is_current_offer(claims, entry.offer)
        )
        return _OfferAnswer(entry, live)

    def _on_offer(
        self,
        clinic: ClinicProfile,
        contacts: PatientContacts,
        message: InboundMessage,
        intent: Intent,
        offered: _OfferAnswer,
        opted_out: bool,
        done: Callable[[], None],
    ) -> ReplyOutcome:
        reply, booked = self._act_on_offer(clinic, offered, intent)
        phone_key = patient_key(message.sender)
        if reply in (Reply.OFFER_ACCEPTED, Reply.OFFER_DECLINED, Reply.OFFER_EXPIRED):
            contacts.answered(phone_key, offer_answer_key(offered.entry.waitlist_id))
        if booked is not None and booked.is_active:
            # Like any confirmed visit, the new one takes a later NO.
            contacts.await_answer(
                phone_key, booked.appointment_id, booked.start, now=self._clock.now()
            )
        done()
        appointment_id = booked.appointment_id if booked is not None else None
        if opted_out:
            return ReplyOutcome(intent, reply, appointment_id)
        content, token, link = self._offer_reply(clinic, offered, reply, booked)
        return self._send_answer(
            clinic, message, intent, reply, content, appointment_id, token, link
        )

    def _act_on_offer(
        self, clinic: ClinicProfile, offered: _OfferAnswer, intent: Intent
    ) -> tuple[Reply, Appointment | None]:
        """Take or let go of the offer; the reply, and the appointment it booked (or was)."""
        entry = offered.entry
        if entry.status is WaitStatus.BOOKED and entry.appointment_id is not None:
            # A button of the offer that already became this visit: told so, nothing undone.
            visit = self._get(clinic, entry.appointment_id)
            if visit is None:
                return Reply.OFFER_EXPIRED, None
            return (Reply.OFFER_ACCEPTED if visit.is_active else Reply.REFUSED), visit
        if not offered.live:
            # Over already: a NO is granted as it stands, anything else is too late.
            return (Reply.OFFER_DECLINED if intent is Intent.CANCEL else Reply.OFFER_EXPIRED), None
        if intent not in (Intent.CONFIRM, Intent.CANCEL):
            return Reply.OFFER_HELP, None
        services = self._services(clinic.clinic_id)
        # Only the offer the patient was told about: a later one of the entry is not answered.
        offer_id = entry.offer.appointment_id if entry.offer is not None else None
        try:
            if intent is Intent.CANCEL:
                services.decline_offer(entry.waitlist_id, offer_id=offer_id)
                return Reply.OFFER_DECLINED, None
            _, appointment = services.accept_offer(
                entry.waitlist_id, by_patient=True, offer_id=offer_id
            )
        except TemporarilyUnavailable:
            raise  # tried again with the whole message
        except PatientDoubleBooked:
            return Reply.OFFER_BUSY, None
        except CitasError:
            # Run out (offer_expired) or ended meanwhile: nothing was booked.
            return Reply.OFFER_EXPIRED, None
        return Reply.OFFER_ACCEPTED, appointment

    def _offer_reply(
        self,
        clinic: ClinicProfile,
        offered: _OfferAnswer,
        reply: Reply,
        booked: Appointment | None,
    ) -> tuple[MessageContent, str | None, str | None]:
        """The answer's text, naming the visit booked or the slot offered; its token and link."""
        links = self._messenger.links
        entry, offer = offered.entry, offered.entry.offer
        token = link = doctor_name = when = None
        if booked is not None:
            token = links.token(booked)
            link = links.url(clinic, token)
            doctor_name = self._doctor_name(clinic, booked.doctor_id)
            when = local_when(booked.start, booked.time_zone)
        elif offer is not None and reply in (Reply.OFFER_BUSY, Reply.OFFER_HELP):
            doctor_name = self._doctor_name(clinic, entry.doctor_id)
            when = local_when(offer.start, entry.time_zone)
            if reply is Reply.OFFER_HELP:
                token = links.offer_token(entry)
                link = links.url(clinic, token)
        content = reply_for(
            reply, clinic_name=clinic.name, doctor_name=doctor_name, when=when, link=link
        )
        return content, token, link
