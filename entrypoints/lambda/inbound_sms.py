"""Lambda handler of patients' SMS replies: SNS records of AWS End User Messaging SMS two-way.

The clinic's two-way number publishes each inbound SMS to an SNS topic that invokes this
function. Each record is one message: `PatientReplies` applies SI / NO / BAJA / ALTA to the
phone's next appointment awaiting an answer, within the clinic whose number was written to,
and answers on the same channel, once per inbound message id.

Authenticity: SNS invokes the function itself, under a resource policy that admits only the
inbound topic (lambda.tf), so the record is AWS's own delivery; no SNS signature is checked
here (that check is for HTTP/S subscribers). Every field is still validated strictly, and a
malformed record is dropped (logged by type, never its text), never retried.

Handler string: `entrypoints.lambda.inbound_sms.handler`.
"""

from __future__ import annotations

from entrypoints.bootstrap import LazyApp
from entrypoints.consumers import sns_handler
from entrypoints.messages import inbound_sms
from entrypoints.observability import logger as logger

# Built on the first invocation, from the environment.
default_app = LazyApp()
handler = sns_handler(default_app, inbound_sms, failure_metric="InboundFailures")
