"""The local console: one JSON object per line, whatever the threads, and the patient messages.

Locally several threads write to stdout at once (the HTTP handler's Powertools log, the
relay and workers, the patient messages). `print` writes a line and its newline in two calls,
and a buffered stream may hand a long line to the file in pieces, so without care one line
can land in the middle of another. `LineWriter` is the one writer of a stream: it collects
each thread's text up to a newline and writes whole lines only, one at a time, under one lock.
"""

from __future__ import annotations

import io
import itertools
import json
import sys
import threading
from typing import Any, TextIO

from ports.messaging import OutboundMessage


class LineWriter(io.TextIOBase):
    """A text stream that passes on whole lines only, one at a time, from any thread."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        # What each thread has written since its last newline.
        self._pending = threading.local()

    @classmethod
    def around(cls, stream: TextIO) -> LineWriter:
        """`stream` behind a LineWriter (itself if it already is one)."""
        return stream if isinstance(stream, LineWriter) else cls(stream)

    def write(self, text: str) -> int:
        """Keep `text` until its thread ends the line, then write the whole lines at once."""
        held: str = getattr(self._pending, "text", "") + text
        lines, newline, rest = held.rpartition("\n")
        self._pending.text = rest
        if newline:
            self._emit(lines + newline)
        return len(text)

    def flush(self) -> None:
        """Write what this thread holds (even without a newline) and flush the stream."""
        held: str = getattr(self._pending, "text", "")
        self._pending.text = ""
        self._emit(held)

    def _emit(self, text: str) -> None:
        with self._lock:
            if text:
                self._stream.write(text)
            # Flushed at once and under the lock: a reader of the file never sees half a line
            # from a buffer that filled up in the middle of one.
            self._stream.flush()

    def writable(self) -> bool:
        """Always: it is an output stream."""
        return True

    def isatty(self) -> bool:
        """Whether the stream behind is a terminal."""
        return self._stream.isatty()

    def fileno(self) -> int:
        """The file descriptor of the stream behind."""
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The encoding of the stream behind."""
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        """The error handler of the stream behind."""
        found: Any = getattr(self._stream, "errors", None)
        return found if isinstance(found, str) else None


class ConsoleNotifier:
    """Prints one JSON line per message: channel, appointment id, the Spanish text, the link."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._count = itertools.count(1)

    def send(self, message: OutboundMessage) -> str | None:
        """Print the message; the phone is deliberately left out (the console is a log)."""
        line = json.dumps(
            {
                "notification": message.channel,
                "appointment_id": message.appointment_id,
                "text": message.text,
                # Locally this line is the patient's phone screen: the link is what they tap.
                "link": message.link,
            },
            ensure_ascii=False,
        )
        # One write of the whole line: on a LineWriter (the local server's stdout) it can
        # never be split by another thread's log line.
        out = self._out or sys.stdout
        out.write(line + "\n")
        out.flush()
        return f"console-{message.channel}-{next(self._count)}"
