"""The local console writes whole JSON lines, whatever the threads writing at once."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

from adapters.console import ConsoleNotifier, LineWriter
from ports.messaging import OutboundMessage

THREADS = 8
LINES = 150


class SlowStream(io.StringIO):
    """A stream that gives the other threads a chance in the middle of every write."""

    def write(self, text: str) -> int:
        for char in text:
            super().write(char)
            if char in ',"':
                time.sleep(0)
        return len(text)


def _hammer(out: LineWriter) -> None:
    handler = logging.StreamHandler(out)  # as Powertools' Logger writes
    handler.setFormatter(logging.Formatter("%(message)s"))
    notifier = ConsoleNotifier(out)
    start = threading.Barrier(THREADS)

    def work(n: int) -> None:
        start.wait()
        for i in range(LINES):
            if i % 3 == 0:
                print(json.dumps({"thread": n, "i": i, "via": "print"}), file=out)
            elif i % 3 == 1:
                record = logging.makeLogRecord({"msg": json.dumps({"thread": n, "i": i})})
                handler.emit(record)
            else:
                notifier.send(
                    OutboundMessage(
                        channel="sms",
                        phone="+51987654321",
                        text=f"texto {n}-{i}",
                        clinic_id="demo",
                        appointment_id=f"a-{n}-{i}",
                        link=f"http://127.0.0.1:8000/p/t{n}{i}",
                    )
                )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_prints_log_records_and_messages_never_share_a_line() -> None:
    stream = SlowStream()
    _hammer(LineWriter(stream))
    lines = stream.getvalue().splitlines()
    assert len(lines) == THREADS * LINES
    parsed = [json.loads(line) for line in lines]  # each line is one whole JSON object
    assert all(isinstance(p, dict) for p in parsed)
    assert not any("+51987654321" in line for line in lines)


def test_a_partial_line_waits_for_its_newline_and_flush_writes_it() -> None:
    stream = io.StringIO()
    out = LineWriter(stream)
    out.write('{"a": ')
    assert stream.getvalue() == ""
    out.write("1}\n{")
    assert stream.getvalue() == '{"a": 1}\n'
    out.flush()
    assert stream.getvalue() == '{"a": 1}\n{'


def test_around_wraps_once() -> None:
    out = LineWriter.around(io.StringIO())
    assert LineWriter.around(out) is out  # type: ignore[arg-type]
