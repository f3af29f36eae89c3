"""SQS FIFO adapters: events to the events queue, booking requests to their country's queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import boto3

from adapters.aws.client import CLIENT_CONFIG, LazyClient, lazy, translate_errors
from domain.booking_request import BookingRequest
from domain.events import Event

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


def default_client() -> SQSClient:
    """An SQS client from the standard AWS environment (`AWS_ENDPOINT_URL_SQS`, ...)."""
    return boto3.client("sqs", config=CLIENT_CONFIG)


class SQSEventPublisher:
    """Publishes each event once per event id, in order per appointment (or request)."""

    def __init__(
        self, queue_url: str, client: SQSClient | LazyClient[SQSClient] | None = None
    ) -> None:
        self.queue_url = queue_url
        self._client = lazy(client, default_client)

    def publish(self, event: Event) -> None:
        """Send the event's JSON envelope; a resend within 5 minutes is dropped by SQS."""
        with translate_errors("sqs"):
            self._client().send_message(
                QueueUrl=self.queue_url,
                MessageBody=json.dumps(event.to_envelope(), separators=(",", ":")),
                MessageGroupId=event.group_key,
                MessageDeduplicationId=event.event_id,
            )


class SQSBookingRequestQueue:
    """One FIFO queue per country; messages of one doctor are processed in order."""

    def __init__(
        self,
        queue_urls: Mapping[str, str],
        client: SQSClient | LazyClient[SQSClient] | None = None,
    ) -> None:
        self.queue_urls: Mapping[str, str] = MappingProxyType(dict(queue_urls))
        self._client = lazy(client, default_client)

    def enqueue(self, request: BookingRequest) -> None:
        """Send the whole request (`BookingRequest.to_message`) to its country's queue.

        The body carries the patient's data (the queues are KMS-encrypted): the worker stores
        a request whose own store failed after this send. Never log it.
        """
        url = self.queue_urls.get(request.country)
        if url is None:
            # A deployment without the country's queue is misconfigured, not busy.
            raise LookupError(f"no booking-request queue is configured for {request.country}")
        with translate_errors("sqs"):
            self._client().send_message(
                QueueUrl=url,
                MessageBody=json.dumps(request.to_message(), separators=(",", ":")),
                # In order per doctor of a clinic: two clinics' `dr-perez` are two doctors.
                MessageGroupId=f"{request.clinic_id}#{request.command.doctor_id}",
                MessageDeduplicationId=request.request_id,
            )
