"""Invariant audit of a citas table: read everything back (a Scan) and check the guarantees.

- no two active appointments of one doctor overlap; none of one patient (same phone) either;
- every active appointment holds exactly its cells: each cell it needs is an attribute of its
  doctor's and its patient's day guard (`DOCDAY#`/`PATDAY#`) valued with its tag;
- no orphan cell: every cell of a guard belongs to an active appointment that needs it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench import ddb as ddb_mod


def audit(client: Any, table: str, *, examples: int = 5) -> dict[str, Any]:
    """Scan `table` and check the invariants; `violations` must all be 0."""
    from adapters.aws.dynamodb import appointment_from_item, owner_tag
    from adapters.aws.dynamodb.guards import is_guard, read_guard
    from adapters.aws.dynamodb.items import plain
    from adapters.aws.dynamodb.keys import clinic_of

    appointments = []
    cells: dict[str, str] = {}
    kinds: dict[str, int] = defaultdict(int)
    for raw in ddb_mod.scan_all(client, table):
        item = ddb_mod.from_attributes(raw)
        pk, sk = str(item["pk"]), str(item["sk"])
        clinic = clinic_of(pk)
        # A clinic's keys start with the clinic: count them by the kind that follows it.
        kinds[pk.split("#", 2)[1] if clinic else pk.split("#", 1)[0]] += 1
        if clinic and sk == "APPT":
            appointments.append(appointment_from_item(plain(item)))
        elif is_guard(pk):
            role, owner, held = read_guard(item)
            for cell, tag in held.items():
                cells[_cell_key(str(clinic), role, owner, cell)] = tag
    active = [a for a in appointments if a.is_active]
    found: dict[str, list[str]] = defaultdict(list)

    def overlaps(groups: dict[str, list[Any]], label: str) -> int:
        count = 0
        for owner, items in groups.items():
            items.sort(key=lambda a: a.start)
            for i, first in enumerate(items):
                for second in items[i + 1 :]:
                    if second.start >= first.end:
                        break
                    count += 1
                    found[label].append(
                        f"{owner}: {first.appointment_id} and {second.appointment_id}"
                    )
        return count

    by_doctor: dict[str, list[Any]] = defaultdict(list)
    by_patient: dict[str, list[Any]] = defaultdict(list)
    for a in active:
        by_doctor[a.doctor_id].append(a)
        by_patient[a.patient.key].append(a)
    doctor_overlaps = overlaps(by_doctor, "doctor_overlaps")
    patient_overlaps = overlaps(by_patient, "patient_overlaps")

    needed: dict[str, str] = {}
    missing = 0
    for a in active:
        tag = owner_tag(a.appointment_id)
        clinic = a.clinic_id
        wanted = [_cell_key(clinic, "doctor", a.doctor_id, c) for c in a.doctor_cells()]
        wanted += [_cell_key(clinic, "patient", a.patient.key, c) for c in a.patient_cells()]
        for pk in wanted:
            needed[pk] = tag
            if cells.get(pk) != tag:
                missing += 1
                found["missing_or_foreign_cells"].append(
                    f"{a.appointment_id} lacks {pk} (held by {cells.get(pk)})"
                )
    orphans = 0
    for pk, owner in cells.items():
        if needed.get(pk) != owner:
            orphans += 1
            found["orphan_cells"].append(f"{pk} held by {owner}")
    violations = {
        "doctor_overlaps": doctor_overlaps,
        "patient_overlaps": patient_overlaps,
        "missing_or_foreign_cells": missing,
        "orphan_cells": orphans,
    }
    return {
        "items_by_kind": dict(sorted(kinds.items())),
        "appointments": len(appointments),
        "active": len(active),
        "cells": len(cells),
        "violations": violations,
        "double_bookings": doctor_overlaps + patient_overlaps,
        "ok": not any(violations.values()),
        "examples": {k: v[:examples] for k, v in found.items() if v},
    }


def _cell_key(clinic: str, role: str, owner: str, cell: Any) -> str:
    """One cell of one party, the same whichever side (guard or appointment) names it."""
    return f"{clinic}#{role}#{owner}#{cell:%Y-%m-%dT%H:%MZ}"
