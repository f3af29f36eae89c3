"""Patient messages: what happened to a visit, told in Spanish and the clinic's local time."""

from __future__ import annotations

from datetime import datetime

from domain import events as ev
from domain.appointment import Appointment
from domain.errors import TemporarilyUnavailable
from domain.messages import message_for
from ports.clinics import ClinicDirectory
from ports.messaging import Notifier
from ports.repositories import ClinicRepositories, ProcessedEvents


class PatientMessenger:
    """Tells patients, in Spanish and their clinic's time, what happened to their visit."""

    def __init__(
        self,
        clinics: ClinicDirectory,
        repositories: ClinicRepositories,
        notifier: Notifier,
        processed: ProcessedEvents,
    ) -> None:
        self.clinics = clinics
        self.repositories = repositories
        self.notifier = notifier
        self.processed = processed

    def handle(self, event: ev.Event) -> bool:
        """Send the message for `event` once; False if it was handled before or says nothing."""
        key = f"notify:{event.event_id}"
        if event.appointment_id is None or self.processed.seen(key):
            return False
        clinic = self.clinics.get(event.clinic_id)
        if clinic is None:
            # Not known here yet (just added, this container's directory is older) or no
            # longer served: tried again, and in the dead-letter queue if it never comes.
            raise TemporarilyUnavailable(
                "the event's clinic is not served here (yet)", service="clinics"
            )
        # Read through the event's own clinic: its ids mean nothing in any other.
        appointment = self.repositories.appointments(event.clinic_id).get(event.appointment_id)
        if appointment is None or not self._still_true(event, appointment):
            self.processed.remember(key)
            return False
        doctor = self.repositories.doctors(event.clinic_id).get(appointment.doctor_id)
        text = message_for(
            event,
            clinic_name=clinic.name,
            doctor_name=doctor.name if doctor is not None else "tu médico",
            time_zone=appointment.time_zone,
        )
        if text is not None:
            # Sent before it is remembered: a crash in between sends twice, never zero times.
            self.notifier.send(
                appointment.patient.phone, text, appointment_id=appointment.appointment_id
            )
        self.processed.remember(key)
        return text is not None

    @staticmethod
    def _still_true(event: ev.Event, appointment: Appointment) -> bool:
        # Events can arrive late or out of order (at-least-once delivery, one stream shard per
        # outbox item), so a message goes out only while what it says still holds: no "we got
        # your booking" after a cancellation, no reminder or old time after a reschedule.
        if isinstance(event, ev.AppointmentCancelled):
            return True
        return appointment.is_active and _iso_equal(event.data["start"], appointment.start)


def _iso_equal(text: str, instant: datetime) -> bool:
    return datetime.fromisoformat(text) == instant
