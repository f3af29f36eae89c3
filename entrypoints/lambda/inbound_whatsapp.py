"""Lambda handler of WhatsApp events: SNS records of AWS End User Messaging Social.

The clinic's WhatsApp Business number publishes every webhook event (patients' messages and
button taps, and the delivery status of what we sent) to an SNS topic that invokes this
function. A message is applied like an SMS reply (a button names its appointment by the link
token in its payload); a message WhatsApp reports `failed` is sent again by SMS.

Authenticity: as for SMS (entrypoints.lambda.inbound_sms), the topic's own invocation under the
function's resource policy; every field is validated, a malformed record is dropped.

Handler string: `entrypoints.lambda.inbound_whatsapp.handler`.
"""

from __future__ import annotations

from entrypoints.bootstrap import LazyApp
from entrypoints.consumers import sns_handler
from entrypoints.messages import inbound_whatsapp
from entrypoints.observability import logger as logger

# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = sns_handler(default_app, inbound_whatsapp, failure_metric="InboundFailures")
