"""Queues, publication and notification."""

from __future__ import annotations

from typing import Literal, Protocol

from attrs import field, frozen

from domain.booking_request import BookingRequest
from domain.events import Event

Channel = Literal["sms", "whatsapp"]
CHANNELS: tuple[Channel, ...] = ("sms", "whatsapp")


class EventPublisher(Protocol):
    """Publishes events at least once, ordered per appointment."""

    def publish(self, event: Event) -> None:
        """Send one event."""
        ...


class BookingRequestQueue(Protocol):
    """The per-country queue of asynchronous booking requests, ordered per doctor."""

    def enqueue(self, request: BookingRequest) -> None:
        """Queue a request for its country's worker."""
        ...


@frozen(repr=False)
class OutboundMessage:
    """One message to one patient on one channel; the phone is the only personal datum.

    `text` is the whole message (the SMS body; a WhatsApp fallback), ending with `link`.
    On WhatsApp the message is the approved template `template` with its body `parameters`
    in order and one quick-reply button per payload of `buttons` (Confirmar, Cancelar,
    Reprogramar); a payload names an action and a link token, never a patient.
    `origin` is the clinic's sending identity on the channel (an origination number or
    phone number id on AWS), None for the deployment's default.
    """

    channel: Channel
    phone: str
    text: str
    clinic_id: str
    appointment_id: str | None
    link: str | None = None
    template: str | None = None
    parameters: tuple[str, ...] = ()
    buttons: tuple[str, ...] = ()
    origin: str | None = None
    # The language of the approved template (Meta's code).
    language: str = field(default="es")

    def __repr__(self) -> str:
        # Never the phone or the link, whatever prints the message.
        return (
            f"OutboundMessage(channel={self.channel!r}, clinic_id={self.clinic_id!r}, "
            f"appointment_id={self.appointment_id!r}, template={self.template!r})"
        )


class MessageRefused(Exception):
    """The channel refused this message for good (not a number it can reach, opted out there).

    Carries only the provider's error code: its message may quote the phone.
    """


class Notifier(Protocol):
    """Delivers a message to a patient on the message's channel."""

    def send(self, message: OutboundMessage) -> str | None:
        """Send `message`; the provider's message id, if it gives one.

        TemporarilyUnavailable when a retry may work, MessageRefused when none will.
        """
        ...
