"""What patients read: Spanish messages, always in the clinic's local time.

Messages never carry the patient's name or document, so the text is safe to show in a local
console; only the phone (the address, kept apart by the notifier) identifies the patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from domain import events as ev

_WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_MONTHS = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)
# How patients name their clinic's time; zones not listed fall back to the IANA city name.
ZONE_NAMES: Mapping[str, str] = {
    "America/Lima": "Lima",
    "America/Santiago": "Santiago",
    "America/Bogota": "Bogotá",
    "America/Mexico_City": "Ciudad de México",
    "America/Argentina/Buenos_Aires": "Buenos Aires",
}


def zone_label(time_zone: str) -> str:
    """`America/Lima` → `Lima`: the city patients know their clock by."""
    return ZONE_NAMES.get(time_zone, time_zone.rsplit("/", 1)[-1].replace("_", " "))


def local_when(instant: datetime, time_zone: str) -> str:
    """`lunes 7 de diciembre, 10:00 (hora de Lima)`: never UTC, always the clinic's wall time."""
    wall = instant.astimezone(ZoneInfo(time_zone))
    return (
        f"{_WEEKDAYS[wall.weekday()]} {wall.day} de {_MONTHS[wall.month - 1]}, "
        f"{wall:%H:%M} (hora de {zone_label(time_zone)})"
    )


def message_for(
    event: ev.Event, *, clinic_name: str, doctor_name: str, time_zone: str
) -> str | None:
    """The text a patient receives for `event`, or None when the event tells them nothing.

    It starts with the clinic's name: one number may send for many clinics, and a patient
    must know at once who writes.
    """
    text = _body(event, doctor_name=doctor_name, time_zone=time_zone)
    return None if text is None else f"{clinic_name}: {text}"


def _body(event: ev.Event, *, doctor_name: str, time_zone: str) -> str | None:
    data = event.data
    when = local_when(datetime.fromisoformat(data["start"]), time_zone) if "start" in data else ""
    if isinstance(event, ev.AppointmentRequested):
        return (
            f"Hola, recibimos tu reserva con {doctor_name} para el {when}. "
            "La clínica te confirmará la cita."
        )
    if isinstance(event, ev.AppointmentRescheduled):
        before = local_when(datetime.fromisoformat(data["previous_start"]), time_zone)
        return (
            f"Hola, tu cita con {doctor_name} cambió al {when} (antes: {before}). "
            "La clínica te confirmará el nuevo horario."
        )
    if isinstance(event, ev.AppointmentCancelled):
        return f"Hola, tu cita con {doctor_name} del {when} fue cancelada."
    if isinstance(event, ev.ReminderDue):
        return (
            f"Recordatorio: tienes cita con {doctor_name} el {when}. "
            "Si no puedes asistir, avisa a la clínica."
        )
    return None
