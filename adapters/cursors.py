"""The waitlist's page cursor, one shape on every backend: (creation instant, entry id).

A doctor's waitlist is ordered by when each entry joined, then by id; a cursor names the last
entry of a page. Both backends read and make the same shape (DynamoDB turns it into a key
condition on gsi1, needing no item to point at), so a page token is checked alike everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.errors import InvalidCursor
from domain.waitlist import WaitlistEntry


def entry_order(entry: WaitlistEntry) -> tuple[datetime, str]:
    """The order of a doctor's waitlist: oldest first, then by id."""
    return entry.created_at, entry.waitlist_id


def entry_cursor(entry: WaitlistEntry) -> dict[str, str]:
    """The cursor that points after `entry`."""
    return {"created_at": entry.created_at.isoformat(), "id": entry.waitlist_id}


def entry_position(cursor: Mapping[str, Any]) -> tuple[datetime, str]:
    """The (creation instant, id) a waitlist cursor points after, or InvalidCursor."""
    if not isinstance(cursor, Mapping) or set(cursor) != {"created_at", "id"}:
        raise InvalidCursor("unexpected cursor shape")
    created, entry_id = cursor["created_at"], cursor["id"]
    if not isinstance(created, str) or not isinstance(entry_id, str):
        raise InvalidCursor("cursor values must be strings")
    try:
        when = datetime.fromisoformat(created)
    except ValueError as e:
        raise InvalidCursor(str(e)) from e
    if when.tzinfo is None:
        raise InvalidCursor("the cursor's instant has no offset")
    return when, entry_id
