"""What patients write back: inbound messages, the keywords they use and what each one means.

Patients answer by SMS or WhatsApp, in whatever case, with or without accents: `SI`, `Sí`,
` confirmo ` all confirm. A WhatsApp quick-reply button carries a payload instead of text:
`<action>:<link token>`, which names its appointment (or, with `aceptar` / `rechazar` and an
offer token, its waitlist offer) without any personal data.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from typing import Final, Literal

from attrs import frozen

# Longest text read from an inbound message; longer ones are cut (nobody answers SI in 2 KB).
MAX_INBOUND_TEXT: Final = 1600
MAX_MESSAGE_ID: Final = 200


class Intent(enum.StrEnum):
    """What an inbound message asks for."""

    CONFIRM = "confirm"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    UNKNOWN = "unknown"


KEYWORDS: Final = {
    "SI": Intent.CONFIRM,
    "1": Intent.CONFIRM,
    "CONFIRMO": Intent.CONFIRM,
    "CONFIRMAR": Intent.CONFIRM,
    "NO": Intent.CANCEL,
    "2": Intent.CANCEL,
    "CANCELAR": Intent.CANCEL,
    "CANCELO": Intent.CANCEL,
    "REPROGRAMAR": Intent.RESCHEDULE,
    "BAJA": Intent.OPT_OUT,
    "STOP": Intent.OPT_OUT,
    "ALTA": Intent.OPT_IN,
}
_SEPARATORS: Final = re.compile(r"[\s.,;:!¡?¿]+")
# Button payload actions (`confirmar:<token>`), the page's own words. The first action of an
# intent is the one an appointment's buttons carry (`button_payload`).
BUTTON_ACTIONS: Final = {
    "confirmar": Intent.CONFIRM,
    "cancelar": Intent.CANCEL,
    "reprogramar": Intent.RESCHEDULE,
    "aceptar": Intent.CONFIRM,
    "rechazar": Intent.CANCEL,
}
# The buttons of a waitlist offer (Aceptar / Rechazar), in the approved template's order.
OFFER_BUTTONS: Final = ("aceptar", "rechazar")


def normalise(text: str) -> str:
    """Upper case, accents and surrounding spaces and punctuation removed: `' Sí! '` → `SI`."""
    decomposed = unicodedata.normalize("NFKD", text[:MAX_INBOUND_TEXT])
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.strip().strip(".!¡?¿,;:").strip().upper()


def intent_of(text: str | None) -> Intent:
    """The keyword `text` is, or UNKNOWN.

    Several keywords of one meaning count as that one (`Sí, confirmo`); any other word, or
    keywords of two meanings (`si no`), make it UNKNOWN: a guess could cancel a visit.
    """
    if not text:
        return Intent.UNKNOWN
    words = [w for w in _SEPARATORS.split(normalise(text)) if w]
    intents = {KEYWORDS.get(word, Intent.UNKNOWN) for word in words}
    return intents.pop() if len(intents) == 1 else Intent.UNKNOWN


def button_intent(payload: str | None) -> tuple[Intent, str] | None:
    """The action and link token of a quick-reply payload, or None if it is not one of ours."""
    if not payload or len(payload) > 300:
        return None
    action, sep, token = payload.partition(":")
    intent = BUTTON_ACTIONS.get(action)
    if not sep or intent is None or not token:
        return None
    return intent, token


def button_payload(intent: Intent, token: str) -> str:
    """The quick-reply payload of `intent` on the appointment `token` names."""
    action = next(a for a, i in BUTTON_ACTIONS.items() if i is intent)
    return f"{action}:{token}"


def offer_button_payloads(token: str) -> tuple[str, ...]:
    """The payloads of an offer's Aceptar and Rechazar buttons, on the offer `token` names."""
    return tuple(f"{action}:{token}" for action in OFFER_BUTTONS)


InboundChannel = Literal["sms", "whatsapp"]


@frozen(repr=False)
class InboundMessage:
    """One message a patient sent to a clinic's number.

    `message_id` is the provider's id (the deduplication key of redeliveries); `sender` is the
    patient's phone in E.164; `recipient` the clinic's identity it was sent to (an SMS
    origination number, a WhatsApp phone number id), None locally where the API key says it.
    Either `text` or `button` (a quick-reply payload) is set.
    """

    channel: InboundChannel
    message_id: str
    sender: str
    recipient: str | None = None
    text: str | None = None
    button: str | None = None

    def __repr__(self) -> str:
        # Never the phone or the text.
        return f"InboundMessage(channel={self.channel!r}, message_id={self.message_id!r})"


@frozen(repr=False)
class DeliveryFailure:
    """The provider could not deliver a message sent earlier (`message_id`, as it answered).

    `recipient` is the phone it was for, in E.164 (the status event names it): the fallback
    SMS goes there, since the ledger of sent messages keeps no phone.
    """

    channel: InboundChannel
    message_id: str
    recipient: str | None = None
    error_code: str | None = None

    def __repr__(self) -> str:
        return f"DeliveryFailure(channel={self.channel!r}, message_id={self.message_id!r})"
