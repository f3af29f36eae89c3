"""A notifier for local runs: prints the message a patient would get, never the address."""

from __future__ import annotations

import json
import sys
import threading
from typing import TextIO


class ConsoleNotifier:
    """Prints one JSON line per message: channel, appointment id and the Spanish text."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, phone: str, text: str, *, appointment_id: str | None) -> None:
        """Print `text`; the phone is deliberately left out (logs carry no patient data)."""
        line = json.dumps(
            {"notification": "sms", "appointment_id": appointment_id, "text": text},
            ensure_ascii=False,
        )
        with self._lock:
            print(line, file=self._out or sys.stdout, flush=True)
