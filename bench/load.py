"""The machine's load around each benchmark family: load average, busy CPU, own CPU, noise.

bench/run.py samples before and after every family. Before: the 1-minute load average and the
share of CPU busy on the whole machine (all cores, /proc/stat) over a short sample while this
process sleeps, so what is busy then is somebody else. After: the same load average, the busy
share over the family's whole run, and this process's own CPU time over it (itself and its
waited-for children: DynamoDB Local, `citas serve`, the cold-start interpreters), so that the
CPU the other processes used is about `busy - own`.

A family is `noisy` when other processes were using the machine (`noisy_reasons`):

- more than `BUSY_BEFORE_MAX` of the CPU busy in the pre-start sample;
- a 1-minute load average above `LOAD_1MIN_MAX` at the start, beyond what this run's own
  earlier families still account for. The load average decays over about a minute, so right
  after a family that kept two cores busy it is high with nobody else on the machine; it
  also counts runnable threads, not CPU: DynamoDB Local's JVM and the clients easily keep
  four runnable on two cores. So the run's own part is estimated from the load average
  itself (`own_load_after`): of its value at a family's end, what the other processes'
  part at the start (decayed) and their CPU during the family do not explain is the run's.
  The first family of a run has no earlier family: all its load average counts, a previous
  run's within the last minute included;
- other processes using more than `OTHER_DURING_MAX` of the machine's CPU during the run
  (busy - own, over cores x wall time). The margin covers what /proc/stat counts as busy but
  no process is charged for (interrupts, the kernel's loopback networking for the
  benchmark's own requests): a few percent on this machine.
"""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC_STAT = Path("/proc/stat")
BUSY_BEFORE_MAX = 0.25
LOAD_1MIN_MAX = 1.0
OTHER_DURING_MAX = 0.15
# The kernel's 1-minute load average is an exponential average with a 60-second time constant.
LOAD_TIME_CONSTANT_S = 60.0
THRESHOLDS = {
    "busy_share_before": BUSY_BEFORE_MAX,
    "load_1min_before_beyond_own": LOAD_1MIN_MAX,
    "other_share_during": OTHER_DURING_MAX,
}


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU ticks of the whole machine (every core): the non-idle ones and all."""

    busy: int
    total: int


def parse_proc_stat(text: str) -> CpuTimes | None:
    """The aggregate `cpu` line of /proc/stat as busy and total ticks; None if absent."""
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] != "cpu":
            continue
        # user nice system idle iowait irq softirq steal; guest and guest_nice are already
        # counted in user and nice. Steal is busy: another guest had the core.
        values = [int(v) for v in fields[1:9]]
        values += [0] * (8 - len(values))
        idle = values[3] + values[4]
        total = sum(values)
        return CpuTimes(busy=total - idle, total=total)
    return None


def read_cpu_times(path: Path = PROC_STAT) -> CpuTimes | None:
    """The machine's CPU ticks now; None where there is no /proc/stat."""
    try:
        return parse_proc_stat(path.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def busy_share(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """The share of the CPU (all cores) that was busy between two readings."""
    if before is None or after is None or after.total <= before.total:
        return None
    return (after.busy - before.busy) / (after.total - before.total)


def tick_seconds() -> float:
    """Seconds per /proc/stat tick (USER_HZ, 1/100 s almost everywhere)."""
    try:
        return 1.0 / os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 0.01


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children it has waited for."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def load_1min() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def decayed(load: float, seconds: float, level: float = 0.0) -> float:
    """A load average after `seconds` of `level` runnable tasks (the kernel's average)."""
    keep = math.exp(-max(seconds, 0.0) / LOAD_TIME_CONSTANT_S)
    return load * keep + level * (1.0 - keep)


def own_load_after(
    own_before: float,
    load_before: float | None,
    load_after: float | None,
    wall_s: float,
    own_runnable: float,
    other_runnable: float,
) -> float:
    """The run's own part of the 1-minute load average at a family's end (an estimate).

    The other processes' part is theirs at the start, decayed, plus what their CPU use during
    the family adds; the run's is the rest of the load average read at the end, and at least
    what its own CPU use (`own_runnable` tasks on average) adds to its part at the start.
    """
    by_cpu = decayed(own_before, wall_s, own_runnable)
    if load_before is None or load_after is None:
        return by_cpu
    other = decayed(max(load_before - own_before, 0.0), wall_s, other_runnable)
    return max(min(load_after, max(by_cpu, load_after - other)), 0.0)


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def noisy_reasons(load: dict[str, Any]) -> list[str]:
    """Why other processes were using the machine around a family; [] when they were not."""
    reasons = []
    before = load.get("busy_share_before")
    if before is not None and before > BUSY_BEFORE_MAX:
        reasons.append(
            f"{_pct(before)} of the CPU busy in the {load.get('pre_start_sample_s')} s before "
            f"the start (> {_pct(BUSY_BEFORE_MAX)})"
        )
    load_start = load.get("load_1min_before")
    if load_start is not None:
        own = load.get("load_1min_own_estimate_before") or 0.0
        beyond = load_start - own
        if beyond > LOAD_1MIN_MAX:
            reasons.append(
                f"1-min load average {load_start:.2f} at the start"
                + (f", {beyond:.2f} beyond this run's own earlier families" if own else "")
                + f" (> {LOAD_1MIN_MAX:g})"
            )
    other = load.get("other_share_during")
    if other is not None and other > OTHER_DURING_MAX:
        reasons.append(
            f"other processes used about {_pct(other)} of the CPU during the run "
            f"(> {_pct(OTHER_DURING_MAX)})"
        )
    return reasons


@dataclass
class _Start:
    """What `LoadMeter.before` read, for `LoadMeter.after`."""

    record: dict[str, Any]
    cpu: CpuTimes | None
    own_s: float
    wall: float


@dataclass
class LoadMeter:
    """Samples the machine around each family of one run, in order (bench/run.py)."""

    sample_seconds: float = 2.0
    # This run's own part of the 1-minute load average at `last_end` (an estimate).
    own_load: float = 0.0
    last_end: float | None = None
    _tick: float = field(default_factory=tick_seconds)

    def before(self) -> _Start:
        """Sample the idle machine for `sample_seconds`, then mark the family's start."""
        first = read_cpu_times()
        time.sleep(self.sample_seconds)
        cpu = read_cpu_times()
        now = time.monotonic()
        own_estimate = 0.0 if self.last_end is None else decayed(self.own_load, now - self.last_end)
        share = busy_share(first, cpu)
        record = {
            "load_1min_before": _round(load_1min()),
            "load_1min_own_estimate_before": round(own_estimate, 2),
            "busy_share_before": _round(share, 3),
            "pre_start_sample_s": self.sample_seconds,
        }
        self.own_load = own_estimate
        return _Start(record, cpu, own_cpu_seconds(), now)

    def after(self, start: _Start) -> dict[str, Any]:
        """The family's load record, `noisy` and its reasons included."""
        cpu, own_s, now = read_cpu_times(), own_cpu_seconds(), time.monotonic()
        wall = max(now - start.wall, 1e-9)
        own = own_s - start.own_s
        record = {**start.record, "load_1min_after": _round(load_1min()), "wall_s": round(wall, 1)}
        record["own_cpu_s"] = round(own, 2)
        record["busy_share_during"] = _round(busy_share(start.cpu, cpu), 3)
        other_cpu_s = 0.0
        if start.cpu is not None and cpu is not None and cpu.total > start.cpu.total:
            capacity = (cpu.total - start.cpu.total) * self._tick
            other_cpu_s = max((cpu.busy - start.cpu.busy) * self._tick - own, 0.0)
            record["cpu_capacity_s"] = round(capacity, 1)
            record["own_share_during"] = round(own / capacity, 3)
            record["other_share_during"] = round(other_cpu_s / capacity, 3)
        # What the next family's start will count as this run's own load average.
        self.own_load = own_load_after(
            self.own_load,
            start.record["load_1min_before"],
            record["load_1min_after"],
            wall,
            own / wall,
            other_cpu_s / wall,
        )
        record["load_1min_own_estimate_after"] = round(self.own_load, 2)
        self.last_end = now
        reasons = noisy_reasons(record)
        record.update(noisy=bool(reasons), noisy_reasons=reasons, thresholds=THRESHOLDS)
        return record


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
