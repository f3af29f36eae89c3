"""Amazon SNS adapter: patients' messages as transactional SMS sent straight to their phone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import boto3
from botocore.exceptions import ClientError

from adapters.aws.client import CLIENT_CONFIG, LazyClient, error_code, lazy, translate_errors
from ports.messaging import MessageRefused, OutboundMessage

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

# Transactional SMS are delivered ahead of promotional ones and also to numbers on
# do-not-disturb lists: an appointment change is not marketing.
SMS_ATTRIBUTES: Final[dict[str, MessageAttributeValueTypeDef]] = {
    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
}


class SmsRefused(MessageRefused):
    """SNS refused a message for good: an invalid or opted-out number, a spending limit."""


def default_client() -> SNSClient:
    """An SNS client from the standard AWS environment (`AWS_ENDPOINT_URL_SNS`, ...)."""
    return boto3.client("sns", config=CLIENT_CONFIG)


class SNSNotifier:
    """Sends each message as one SMS with `Publish` to a phone number (no topic)."""

    def __init__(self, client: SNSClient | LazyClient[SNSClient] | None = None) -> None:
        self._client = lazy(client, default_client)

    def send(self, message: OutboundMessage) -> str | None:
        """Send the message's text as an SMS; the SNS message id.

        Throttling and outages raise TemporarilyUnavailable; any other refusal raises
        SmsRefused (a MessageRefused) carrying only the AWS error code. SNS has no WhatsApp:
        a WhatsApp message is refused, so the messenger sends it by SMS instead.
        """
        if message.channel != "sms":
            raise SmsRefused("sns refused the message: NotAnSmsChannel")
        try:
            with translate_errors("sns"):
                answer = self._client().publish(
                    PhoneNumber=message.phone,
                    Message=message.text,
                    MessageAttributes=SMS_ATTRIBUTES,
                )
        except ClientError as e:
            # SNS quotes the phone number in some refusals; only the code may reach a log.
            raise SmsRefused(f"sns refused the message: {error_code(e)}") from None
        return answer.get("MessageId")
