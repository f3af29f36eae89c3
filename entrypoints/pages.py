"""The patient's pages behind `/p/{token}`: Spanish HTML, mobile first, no JavaScript.

Two pages share one layout: an appointment's (confirm, cancel, reschedule) and a waitlist
offer's (the held slot, until when, Aceptar / Rechazar).

Rendering only: the routes decide what a patient may do and pass it in a `PageView`. Jinja2
is imported when the first page is rendered, not when this module is, so the API's cold start
does not pay for it; the environment is then built once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from domain.messages import local_when

if TYPE_CHECKING:
    from jinja2 import Environment

# Next to this module, so the same path works in the repository, a wheel and the Lambda zip.
TEMPLATES = Path(__file__).resolve().parent / "templates"

STATUS_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "requested": "Por confirmar",
        "confirmed": "Confirmada",
        "cancelled": "Cancelada",
        "completed": "Atendida",
        "no_show": "No asistió",
    }
)

NOTICES: Mapping[str, str] = MappingProxyType(
    {
        "confirmada": "¡Listo! Tu cita está confirmada. Te esperamos.",
        "cancelada": "Tu cita fue cancelada. Gracias por avisarnos.",
        "reprogramada": "Listo, cambiamos tu cita al nuevo horario.",
        "ya_confirmada": "Tu cita ya estaba confirmada. Te esperamos.",
        "slot_unavailable": "Ese horario se acaba de ocupar. Elige otro, por favor.",
        "patient_double_booked": "Ya tienes otra cita a esa hora. Elige otro horario.",
        "invalid_transition": (
            "Esta cita ya no se puede cambiar desde aquí. Escribe a la clínica si necesitas ayuda."
        ),
        "start_in_past": "Ese horario ya pasó. Elige otro, por favor.",
        "too_soon": "Ese horario está muy próximo. Elige uno más adelante.",
        "too_far": "Ese horario está demasiado lejos. Elige uno más cercano.",
        "outside_working_hours": "A esa hora no hay atención. Elige otro horario.",
        "invalid_slot": "Ese horario no es válido. Elige uno de la lista.",
        "doctor_unavailable": "No hay atención en ese horario. Elige otro, por favor.",
        "invalid_start": "Elige uno de los horarios de la lista para reprogramar.",
        "temporarily_unavailable": (
            "No pudimos guardar tu respuesta. Inténtalo de nuevo en unos minutos."
        ),
        "version_conflict": (
            "Tu cita cambió mientras la veías. Revisa los datos y vuelve a intentarlo."
        ),
        # After a waitlist offer was taken from its page: this is the appointment it became.
        "reservada": "¡Listo! Reservamos este horario para ti: tu cita está confirmada.",
        "ya_reservada": "Este horario ya es tu cita. Si no puedes venir, cancélala aquí.",
    }
)
# Notices that report what the patient asked for; the others say why it did not happen, and
# look different so that nobody reads a refusal as a success.
GOOD_NOTICES = frozenset(
    {"confirmada", "cancelada", "reprogramada", "ya_confirmada", "reservada", "ya_reservada"}
)
# The offer page's notices, after Aceptar did not book or Rechazar let the slot go.
OFFER_NOTICES: Mapping[str, str] = MappingProxyType(
    {
        "rechazada": "Liberamos el horario. Sigues en la lista de espera.",
        "patient_double_booked": (
            "Ya tienes otra cita a esa hora, así que no pudimos reservar este horario."
        ),
        "invalid_transition": (
            "Este horario ya no se puede tomar desde aquí. Escribe a la clínica si necesitas ayuda."
        ),
        "temporarily_unavailable": (
            "No pudimos guardar tu respuesta. Inténtalo de nuevo en unos minutos."
        ),
        "version_conflict": "El horario cambió mientras lo veías. Vuelve a intentarlo.",
        # The booking rules refused the held time (the doctor's week changed since the offer).
        **dict.fromkeys(
            (
                "slot_unavailable",
                "outside_working_hours",
                "doctor_unavailable",
                "too_soon",
                "too_far",
                "start_in_past",
                "invalid_slot",
                "not_found",
            ),
            "Ya no podemos reservar este horario. Escribe a la clínica si necesitas ayuda.",
        ),
    }
)
GOOD_OFFER_NOTICES = frozenset({"rechazada"})
# Refusals of a chosen time: the page opens the list again so the patient can pick another.
RESCHEDULE_NOTICES = frozenset(
    {
        "slot_unavailable",
        "patient_double_booked",
        "start_in_past",
        "too_soon",
        "too_far",
        "outside_working_hours",
        "invalid_slot",
        "doctor_unavailable",
        "invalid_start",
    }
)

# Every colour of the pages, and nowhere else: the stylesheet reads them from here and the unit
# test checks each pair of CONTRAST_PAIRS against WCAG AA (4.5:1 for text).
PALETTE: Mapping[str, str] = MappingProxyType(
    {
        "page": "#f6f4f0",
        "card": "#ffffff",
        "text": "#1f2a33",
        "muted": "#4f5d69",
        "line": "#d5d0c8",
        "control": "#857d72",
        "primary": "#0b6464",
        "on_primary": "#ffffff",
        "danger": "#a12a2a",
        "requested_bg": "#fff1cc",
        "requested_fg": "#6e4400",
        "confirmed_bg": "#def3e6",
        "confirmed_fg": "#17603a",
        "cancelled_bg": "#fbe5e5",
        "cancelled_fg": "#8f2424",
        "completed_bg": "#e2ebf8",
        "completed_fg": "#1d4a86",
        "no_show_bg": "#eaedf0",
        "no_show_fg": "#36434f",
        "good_bg": "#def3e6",
        "good_fg": "#135232",
        "problem_bg": "#fff1cc",
        "problem_fg": "#5c3900",
    }
)
# (text, background) as the stylesheet pairs them.
CONTRAST_PAIRS: tuple[tuple[str, str], ...] = (
    ("text", "page"),
    ("text", "card"),
    ("muted", "page"),
    ("muted", "card"),
    ("primary", "card"),  # the Reprogramar summary, slot labels' focus text
    ("on_primary", "primary"),  # Confirmar, Reprogramar submit, a chosen slot
    ("danger", "card"),  # Cancelar, outlined
    ("requested_fg", "requested_bg"),
    ("confirmed_fg", "confirmed_bg"),
    ("cancelled_fg", "cancelled_bg"),
    ("completed_fg", "completed_bg"),
    ("no_show_fg", "no_show_bg"),
    ("good_fg", "good_bg"),
    ("problem_fg", "problem_bg"),
)
# (boundary, background) of controls, where WCAG AA asks 3:1 (1.4.11, non-text contrast).
NON_TEXT_PAIRS: tuple[tuple[str, str], ...] = (
    ("control", "card"),  # a free slot's outline
    ("primary", "card"),
    ("danger", "card"),
    ("primary", "page"),
    ("text", "page"),  # the focus ring
)


@attrs.frozen
class SlotChoice:
    """One free time to move to: `value` is the instant with offset, `label` its wall clock."""

    value: str
    label: str


@attrs.frozen
class DayChoice:
    """The free times of one local day, `label` like `lunes 7 de diciembre`."""

    label: str
    slots: tuple[SlotChoice, ...]


@attrs.frozen
class PageView:
    """What the appointment page shows and which actions it offers."""

    clinic_name: str
    doctor_name: str
    when: str
    status: str = attrs.field(validator=attrs.validators.in_(STATUS_LABELS))
    can_confirm: bool
    can_cancel: bool
    can_reschedule: bool
    days: tuple[DayChoice, ...]
    notice: str | None = attrs.field(
        validator=attrs.validators.optional(attrs.validators.in_(NOTICES))
    )
    token: str


@attrs.frozen
class OfferView:
    """What an offer's page shows: the held slot while `live`, else only that it ended."""

    clinic_name: str
    doctor_name: str
    when: str
    until: str
    live: bool
    waiting: bool
    notice: str | None = attrs.field(
        validator=attrs.validators.optional(attrs.validators.in_(OFFER_NOTICES))
    )
    token: str


def day_choices(starts: Iterable[datetime], time_zone: str) -> tuple[DayChoice, ...]:
    """Free slot starts grouped by local day, in order, labelled in the clinic's time."""
    zone = ZoneInfo(time_zone)
    days: dict[str, list[SlotChoice]] = {}
    for start in sorted(starts):
        wall = start.astimezone(zone)
        # `lunes 7 de diciembre, 10:00 (hora de Lima)`: the day is what precedes the comma.
        day = local_when(start, time_zone).partition(", ")[0]
        slot = SlotChoice(wall.isoformat(timespec="seconds"), f"{wall:%H:%M}")
        days.setdefault(day, []).append(slot)
    return tuple(DayChoice(label, tuple(slots)) for label, slots in days.items())


@functools.cache
def _environment() -> Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # Every name on the page (clinic, doctor) comes from a clinic's input: escape all of it,
        # the inlined stylesheet included.
        autoescape=jinja2.select_autoescape(("html",), default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        # Templates ship with the code and never change in a running process: no stat per page.
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(palette=PALETTE, **context)


def render_appointment(view: PageView) -> str:
    """The appointment page: details, status, and the actions `view` allows."""
    return _render(
        "appointment.html",
        v=view,
        status_label=STATUS_LABELS[view.status],
        notice_text=NOTICES[view.notice] if view.notice else None,
        notice_good=view.notice in GOOD_NOTICES,
        open_reschedule=view.notice in RESCHEDULE_NOTICES,
    )


def render_offer(view: OfferView) -> str:
    """The offer page: the held slot and Aceptar / Rechazar, or that the offer ended."""
    return _render(
        "offer.html",
        v=view,
        notice_text=OFFER_NOTICES[view.notice] if view.notice else None,
        notice_good=view.notice in GOOD_OFFER_NOTICES,
    )


def render_offer_gone(clinic_name: str | None, *, waiting: bool) -> str:
    """The page of an offer taken too late (or its expired link): nothing was booked."""
    where = f" en {clinic_name}" if clinic_name else ""
    lines = [f"El horario que guardamos para ti{where} ya no está disponible; no reservamos nada."]
    if waiting:
        lines.append("Sigues en la lista de espera: te escribiremos si se libera otro horario.")
    return _render(
        "message.html", title="Oferta vencida", heading="Esta oferta ya venció", lines=lines
    )


def render_not_found() -> str:
    """The page of a bad or tampered link: it says nothing about any appointment."""
    return _render(
        "message.html",
        title="Enlace no válido",
        heading="Este enlace no es válido.",
        lines=("Revisa que lo hayas abierto completo, tal como llegó en el mensaje.",),
    )


def render_expired(clinic_name: str | None) -> str:
    """The page of a link whose appointment has started: the link expired."""
    where = f" en {clinic_name}" if clinic_name else ""
    return _render(
        "message.html",
        title="Enlace vencido",
        heading="Este enlace ya venció",
        lines=(
            f"La hora de tu cita{where} ya llegó, así que este enlace dejó de funcionar.",
            "Si necesitas una nueva cita, escríbenos y te ayudamos.",
        ),
    )


def render_error() -> str:
    """The page of a 503: nothing changed, try again later."""
    return _render(
        "message.html",
        title="Inténtalo más tarde",
        heading="No pudimos abrir esta página",
        lines=("Tuvimos un problema de nuestro lado. Inténtalo de nuevo en unos minutos.",),
    )
