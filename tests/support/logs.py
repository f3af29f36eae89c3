"""What a Lambda handler module logs, captured for a test to read."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def service_logs(logger: Any) -> Iterator[io.StringIO]:
    """Everything a handler module's Powertools logger writes, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    service_logger = logging.getLogger(logger.service)
    service_logger.addHandler(handler)
    try:
        yield stream
    finally:
        service_logger.removeHandler(handler)
