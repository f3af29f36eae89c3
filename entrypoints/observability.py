"""The one Powertools setup of the Lambda handlers: the service's logger and its metrics.

Every Lambda module logs and counts through these two, so a line or a metric looks the same
whichever function wrote it. Logs are one JSON object per line.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics

SERVICE = "citas"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="citas", service=SERVICE)
# Many invocations count nothing (a read, a batch of skipped records); that is expected.
warnings.filterwarnings("ignore", message="No application metrics to publish")
