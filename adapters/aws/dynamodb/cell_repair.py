"""Stale-cell repair: free the orphan cell locks that refused a booking or a move, once.

A cell is stale when its owner appointment is gone, no longer active, or no longer covers
that cell (another doctor, patient or time). When a transaction is refused because one of its
cells is taken, every cell it asked for is read (one consistent BatchGetItem) and each owner
(a consistent GetItem); if every taken cell is stale, they are deleted (one transaction per
owner: a ConditionCheck that the owner is still the version it read, or still missing, plus
deletes conditioned on `appointment_id = <owner>`) and the caller sends its transaction once
more. Why: a crash or a failure between the two transactions of a long move, or any other
orphan lock, would otherwise hold that time until its TTL. The happy path makes no extra call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from adapters.aws.dynamodb.cells import CELL_ROLES, held_cells, log
from adapters.aws.dynamodb.items import appointment_from_item
from adapters.aws.dynamodb.keys import APPOINTMENT_SK, LOCK_SK, TRANSACTION_LIMIT, appointment_pk
from adapters.aws.dynamodb.table import Table
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction


def commit_healing(
    table: Table,
    tx: Transaction,
    precedence: Sequence[Role],
    me: str,
    refuse: Callable[[Cancelled], NoReturn],
) -> None:
    """Commit `tx`; if stale cells refused it, free them and send it once more, else `refuse`."""
    try:
        table.transact(tx)
        return
    except Cancelled as cancelled:
        if not heal(table, tx, cancelled, precedence, me):
            refuse(cancelled)
    try:
        table.transact(tx)
    except Cancelled as again:
        refuse(again)


def heal(
    table: Table, tx: Transaction, cancelled: Cancelled, precedence: Sequence[Role], me: str
) -> bool:
    """Free the stale cells that refused `tx`; True if `tx` is worth sending once more."""
    if tx.first(cancelled, *precedence) not in CELL_ROLES:
        return False
    owners: dict[str, dict[str, Any] | None] = {}
    stale: dict[str, list[str]] = {}
    for cell in table.batch_get(tx.put_keys(CELL_ROLES), LOCK_SK):
        owner = cell.get("appointment_id")
        if owner == me:
            continue  # our own cell (a leftover of this appointment) is accepted
        if not isinstance(owner, str):
            return False  # not a cell citas wrote: leave it alone
        if owner not in owners:
            owners[owner] = table.get(appointment_pk(owner), APPOINTMENT_SK)
        stored = owners[owner]
        if stored is not None and cell["pk"] in held_cells(appointment_from_item(stored)):
            return False  # held by an active appointment that covers it: really taken
        stale.setdefault(owner, []).append(cell["pk"])
    for owner, pks in stale.items():
        _release(table, owner, owners[owner], pks)
    return True


def _release(table: Table, owner: str, stored: dict[str, Any] | None, pks: Sequence[str]) -> None:
    """Delete `owner`'s stale cells, provided the owner did not change since it was read."""
    chunk = TRANSACTION_LIMIT - 1
    for start in range(0, len(pks), chunk):
        tx = Transaction(table.table_name)
        # A move of the owner meanwhile could have taken these cells again: only the state
        # just read proves them stale.
        if stored is None:
            tx.check(appointment_pk(owner), APPOINTMENT_SK, Role.OWNER, "attribute_not_exists(pk)")
        else:
            tx.check(
                appointment_pk(owner),
                APPOINTMENT_SK,
                Role.OWNER,
                "#version = :version",
                {"#version": "version"},
                {":version": stored.get("version")},
            )
        for pk in pks[start : start + chunk]:
            tx.delete(pk, LOCK_SK, Role.STALE_CELL, "appointment_id = :owner", {":owner": owner})
        try:
            table.transact(tx)
        except Cancelled:
            # Someone freed or took a cell again, or the owner changed: the retry decides.
            continue
        log.warning(
            "freed stale cells",
            extra={"fields": {"appointment_id": owner, "cells": len(tx) - 1}},
        )
