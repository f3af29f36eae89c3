"""The one stand-in Lambda context, for handlers run outside Lambda (local server, tests)."""

from __future__ import annotations

import time
import uuid

import attrs


@attrs.define
class LocalContext:
    """The attributes of a Lambda context object that Powertools and the handlers read."""

    aws_request_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    function_name: str = "citas-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    log_stream_name: str = "local"
    # The simulated Lambda timeout: what `get_remaining_time_in_millis` counts down from.
    timeout_seconds: float = 900.0
    started: float = attrs.field(factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        """The function's ARN, in a local account."""
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        """The function's log group, as Lambda names it."""
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of the simulated timeout."""
        left = self.timeout_seconds - (time.monotonic() - self.started)
        return max(0, int(left * 1000))
