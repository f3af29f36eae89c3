"""What patients read: Spanish messages, always in the clinic's local time.

Messages never carry the patient's name or document, so the text is safe to show in a local
console; only the phone (the address, kept apart by the notifier) identifies the patient. The
link at the end is the patient's capability: it appears in the message and nowhere else.

A waitlist offer (`offer_message`) says which time was freed, with whom, until when it is held
for the patient, and asks SI / NO; its link is the offer's page (Aceptar / Rechazar). The end
of an offer (taken, let go, run out) sends no message of its own: the patient's page or reply
already answered, and a staff accept is told as the usual confirmation.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from attrs import frozen

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


@frozen
class MessageContent:
    """One patient message: the whole text (link last) and its WhatsApp template form.

    `template` names the approved WhatsApp template whose body takes `parameters` in order
    (the clinic first, the link last), None for a reply sent as plain text; `asks` says the
    patient is asked to answer (SI/NO and the quick-reply buttons), so the appointment then
    awaits their answer.
    """

    kind: str
    text: str
    template: str | None
    parameters: tuple[str, ...]
    asks: bool = False


# The approved WhatsApp templates, by message kind (README, "Patients answer").
TEMPLATES: Final = {
    "booked": "citas_reserva",
    "ask_again": "citas_confirmar",
    "at_risk": "citas_en_riesgo",
    "reminder": "citas_recordatorio",
    "reminder_soon": "citas_recordatorio_pronto",
    "moved": "citas_cambio",
    "confirmed": "citas_confirmada",
    "cancelled": "citas_cancelada",
    "offer": "citas_oferta",
}
_ANSWER = "Responde SI para confirmar o NO para cancelar"


def _content(
    kind: str, clinic_name: str, body: str, link: str | None, *params: str
) -> MessageContent:
    text = f"{clinic_name}: {body}"
    if link:
        text = f"{text} {link}"
    return MessageContent(
        kind=kind,
        text=text,
        # A reply answers the patient's own message, inside WhatsApp's 24-hour service
        # window: plain text then, no template.
        template=TEMPLATES.get(kind),
        parameters=(clinic_name, *params, *((link,) if link else ())),
        asks=kind in _ASKING,
    )


_ASKING: Final = frozenset(
    {"booked", "ask_again", "at_risk", "moved", "reminder", "reminder_soon", "offer"}
)


def local_until(instant: datetime, time_zone: str, now: datetime) -> str:
    """`las 10:30`, or `el martes 8 de diciembre a las 10:30` when that is not today there."""
    zone = ZoneInfo(time_zone)
    wall = instant.astimezone(zone)
    if wall.date() == now.astimezone(zone).date():
        return f"las {wall:%H:%M}"
    day = local_when(instant, time_zone).partition(", ")[0]
    return f"el {day} a las {wall:%H:%M}"


def offer_message(
    *,
    clinic_name: str,
    doctor_name: str,
    time_zone: str,
    start: datetime,
    expires_at: datetime,
    now: datetime,
    link: str,
) -> MessageContent:
    """The waitlist offer: the freed time, until when it is held, SI to take it, the link.

    Template `citas_oferta`: clinic, doctor, when, until (`las 10:30`), link.
    """
    when = local_when(start, time_zone)
    until = local_until(expires_at, time_zone, now)
    body = _BODIES["offer"].format(doctor=doctor_name, when=when, until=until)
    return _content("offer", clinic_name, body, link, doctor_name, when, until)


def message_for(
    event: ev.Event, *, clinic_name: str, doctor_name: str, time_zone: str, link: str | None
) -> MessageContent | None:
    """The message a patient receives for `event`, or None when the event tells them nothing.

    It starts with the clinic's name (one number may send for many clinics, and a patient
    must know at once who writes), gives the time on the clinic's clock with its city, and
    ends with the patient's link.
    """
    data = event.data
    if data.get("by") == "patient":
        return None  # their own page or reply already told them
    kind = _KIND.get(type(event))
    if kind is None:
        return None
    if kind == "reminder" and data.get("lead_hours") == 2:
        kind = "reminder_soon"
    when = local_when(datetime.fromisoformat(data["start"]), time_zone)
    params = [doctor_name, when]
    before = ""
    if kind == "moved":
        before = local_when(datetime.fromisoformat(data["previous_start"]), time_zone)
        params.append(before)
    body = _BODIES[kind].format(doctor=doctor_name, when=when, before=before, answer=_ANSWER)
    return _content(kind, clinic_name, body, link, *params)


_KIND: Final[Mapping[type[ev.Event], str]] = {
    ev.AppointmentRequested: "booked",
    ev.ConfirmationRequested: "ask_again",
    ev.AppointmentAtRisk: "at_risk",
    ev.ReminderDue: "reminder",
    ev.AppointmentRescheduled: "moved",
    ev.AppointmentConfirmed: "confirmed",
    ev.AppointmentCancelled: "cancelled",
}
# Short and warm, the patient as "tú", the time with its city, what to answer, the link last.
_BODIES: Final[Mapping[str, str]] = {
    "booked": "Hola, reservaste una cita con {doctor} el {when}. ¿Nos confirmas? {answer}, "
    "o entra aquí:",
    "ask_again": "Hola, tu cita con {doctor} es el {when} y aún no está confirmada. {answer}, "
    "o entra aquí:",
    "at_risk": "Tu cita con {doctor} es el {when} y sigue sin confirmar. Responde SI si vienes "
    "o NO para liberar el horario:",
    "reminder": "Recordatorio: tu cita con {doctor} es el {when}. Si no puedes venir, responde "
    "NO o cambia la hora aquí:",
    "reminder_soon": "Te esperamos el {when} con {doctor}. Si no puedes venir, responde NO:",
    "moved": "Hola, tu cita con {doctor} cambió al {when} (antes: {before}). ¿Nos confirmas el "
    "nuevo horario? {answer}, o entra aquí:",
    "confirmed": "¡Listo! Tu cita con {doctor} del {when} está confirmada. Si necesitas "
    "cambiarla, entra aquí:",
    "cancelled": "Hola, tu cita con {doctor} del {when} fue cancelada. Si quieres otra hora, "
    "responde a este mensaje o llama a la clínica. Detalle:",
    "offer": "Hola, se liberó un horario con {doctor} el {when}. Te lo guardamos hasta {until}. "
    "Responde SI para tomarlo o NO para dejarlo, o entra aquí:",
}


class Reply(enum.StrEnum):
    """What citas answers a patient who wrote."""

    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"
    CANCELLED = "cancelled"
    RESCHEDULE = "reschedule"
    HELP = "help"
    HELP_NO_LINK = "help_no_link"
    NOTHING_PENDING = "nothing_pending"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    REFUSED = "refused"
    # Answers about a waitlist offer.
    OFFER_ACCEPTED = "offer_accepted"
    OFFER_DECLINED = "offer_declined"
    OFFER_EXPIRED = "offer_expired"
    OFFER_BUSY = "offer_busy"
    OFFER_HELP = "offer_help"


def reply_for(
    reply: Reply,
    *,
    clinic_name: str,
    doctor_name: str | None = None,
    when: str | None = None,
    link: str | None = None,
) -> MessageContent:
    """The answer to a patient's message: short, in the clinic's voice, the link last."""
    named = doctor_name and when
    visit = f"tu cita con {doctor_name} del {when}" if named else "tu cita"
    slot = f"el horario con {doctor_name} del {when}" if named else "el horario"
    if reply is Reply.HELP and link is None:
        # Nothing to point at: say what works, without a dangling "entra aquí".
        reply = Reply.HELP_NO_LINK
    body = _REPLIES[reply].format(
        visit=visit, Visit=visit[0].upper() + visit[1:], slot=slot, answer=_ANSWER
    )
    return _content("reply", clinic_name, body, link if reply in _REPLIES_WITH_LINK else None)


_REPLIES: Final[Mapping[str, str]] = {
    "confirmed": "¡Gracias! {Visit} quedó confirmada. Te esperamos.",
    "already_confirmed": "{Visit} ya está confirmada. Si necesitas cambiarla, entra aquí:",
    "cancelled": "Listo, cancelamos {visit}. Si quieres otra hora, responde a este mensaje o "
    "llama a la clínica. Detalle:",
    "reschedule": "Elige tu nueva hora aquí:",
    "help": "No entendimos tu respuesta. {answer} {visit}, o entra aquí:",
    "help_no_link": "No entendimos tu respuesta. {answer} cuando te escribamos sobre tu cita, "
    "o llama a la clínica.",
    "nothing_pending": "No encontramos una cita pendiente para este número. Para reservar, "
    "llama a la clínica.",
    "opted_out": "Listo, no te enviaremos más mensajes. Si cambias de opinión, responde ALTA.",
    "opted_in": "¡Hola de nuevo! Volverás a recibir los avisos de tus citas. Para dejar de "
    "recibirlos, responde BAJA.",
    "refused": "No pudimos cambiar {visit}. Revisa su estado aquí:",
    "offer_accepted": "Listo: reservamos {visit}. Te esperamos. Detalle:",
    "offer_declined": "Entendido, liberamos el horario; sigues en la lista de espera.",
    "offer_expired": "Lo sentimos, ese horario ya no está guardado; sigues en la lista de espera.",
    "offer_busy": "No pudimos reservar {slot}: ya tienes otra cita a esa hora. Responde NO "
    "para dejarlo o llama a la clínica.",
    "offer_help": "No entendimos tu respuesta. Responde SI para tomar {slot} o NO para "
    "dejarlo, o entra aquí:",
}
_REPLIES_WITH_LINK: Final = frozenset(
    {
        "confirmed",
        "already_confirmed",
        "cancelled",
        "reschedule",
        "help",
        "refused",
        "offer_accepted",
        "offer_help",
    }
)
