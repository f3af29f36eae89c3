"""Patients' replies by SMS and WhatsApp: SI confirms, NO cancels, BAJA opts out, ALTA back in.

A text reply names no appointment: it applies to the phone's next active appointment that
awaits an answer (one the patient was asked about), within the clinic whose number it was
sent to. A WhatsApp button names its appointment with the link token in its payload. Every
inbound message is handled once (by the provider's message id); anything not understood, or
with nothing to apply to, gets one help reply. An opted-out phone gets no reply, except the
confirmation of BAJA itself and of ALTA.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import frozen

from domain import events as ev
from domain.appointment import Appointment, Status
from domain.clinics import ClinicProfile
from domain.commands import CancelAppointment, ChangeStatus
from domain.errors import CitasError, NotFound, TemporarilyUnavailable
from domain.links import InvalidLink, LinkExpired, Purpose
from domain.messages import Reply, local_when, reply_for
from domain.patient import patient_key
from domain.replies import InboundMessage, Intent, button_intent, intent_of
from domain.use_cases.clinic import Clinic
from domain.use_cases.messenger import PatientMessenger
from ports.patients import Contact, PatientContacts
from ports.repositories import ProcessedEvents
from ports.system import Clock, IdGenerator


@frozen
class ReplyOutcome:
    """What an inbound message came to, for the logs (ids and codes only)."""

    intent: Intent
    reply: Reply | None
    appointment_id: str | None = None
    duplicate: bool = False
    replied: bool = False
    reply_failed: bool = False


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
            if start <= now:
                continue
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
            doctor = self._services(clinic.clinic_id).doctors.get(target.doctor_id)
            doctor_name = doctor.name if doctor is not None else "tu médico"
            when = local_when(target.start, target.time_zone)
        content = reply_for(
            reply, clinic_name=clinic.name, doctor_name=doctor_name, when=when, link=link
        )
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
