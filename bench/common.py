"""Shared helpers of the benchmarks: statistics, the machine, the world they book into."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"

LIMA = ZoneInfo("America/Lima")
SANTIAGO = ZoneInfo("America/Santiago")
ZONES = {"PE": LIMA, "CL": SANTIAGO}
# The fixed "now" of the in-process benchmarks: a Monday morning in Lima. Every booking lies
# on the days after it, so no run depends on the real date. A doctor's default rules hold
# for FIRST_DAY on: more than the 60 minutes' notice ahead, and the days up to NOW + 90 days
# (2027-04-04) inside the booking horizon; the first national holidays after FIRST_DAY are
# PE 2027-03-25/26 (Holy Thursday and Friday) and CL 2027-03-26/27. A family that books
# further ahead or on those days registers its doctors with what it needs
# (`booking_horizon_days`, `works_on_holidays`) and says why.
NOW = dt.datetime(2027, 1, 4, 7, 0, tzinfo=LIMA)
FIRST_DAY = dt.date(2027, 1, 5)
# Every day, 08:00-13:00: ten 30-minute slots, so a full doctor-day is ten appointments.
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MORNING_HOURS = {d: [["08:00", "13:00"]] for d in EVERY_DAY}
SLOT_MINUTES = 30
SLOTS_PER_DAY = 10


class Quick:
    """Sizes of a run: the full run, or `--quick` for development on a noisy machine."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


# --- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary(values: Sequence[float], qs: Sequence[int] = (10, 50, 90, 95, 99)) -> dict[str, Any]:
    """n, min, max, mean and the percentiles `qs` of `values`."""
    out: dict[str, Any] = {"n": len(values)}
    if values:
        out["min"] = float(min(values))
        out["max"] = float(max(values))
        out["mean"] = float(sum(values) / len(values))
    for q in qs:
        out[f"p{q}"] = percentile(values, q)
    return out


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds `fn` took, and what it returned."""
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


# --- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    load: list[float] | None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": load,
    }


# --- output --------------------------------------------------------------------------------


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: Powertools' JSON logs still get formatted and
    written (as on Lambda), without flooding the terminal."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def fmt_us(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    us = seconds * 1e6
    if us >= 10_000:
        return f"{us / 1000:.1f} ms"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} µs"


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def local_start(day: dt.date, slot: int, zone: ZoneInfo = LIMA) -> dt.datetime:
    """The start of slot number `slot` (0-9) of the 08:00-13:00 morning of `day`."""
    minutes = 8 * 60 + slot * SLOT_MINUTES
    return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=zone)


def phone(n: int, country: str = "PE") -> str:
    """A distinct E.164 phone per number."""
    prefix = "+519" if country == "PE" else "+569"
    return f"{prefix}{n:08d}"
