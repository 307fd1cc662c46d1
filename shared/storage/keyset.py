"""Keyset ("seek") paging: the condition "comes after this cursor" in a given order.

Both adapters sort nulls (records lacking a sort key) first in ascending and last in
descending order, with the id ascending as the final tie-breaker; this builds the matching
condition once, through a small set of callbacks each adapter supplies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeysetOps(Generic[T]):
    """How one adapter spells the pieces of a keyset condition."""

    is_null: Callable[[str], T]
    not_null: Callable[[str], T]
    eq: Callable[[str, Any], T]
    gt: Callable[[str, Any], T]
    lt: Callable[[str, Any], T]
    id_gt: Callable[[str], T]
    all_of: Callable[[list[T]], T]
    any_of: Callable[[list[T]], T]


def after(
    columns: Sequence[tuple[str, bool]], values: Sequence[Any], last_id: str, ops: KeysetOps[T]
) -> T:
    """Condition for rows strictly after (values..., last_id) in the order of `columns`
    (each a (field, descending) pair)."""
    branches: list[T] = []
    prefix: list[T] = []
    for (col, desc), value in zip(columns, values, strict=True):
        if desc:
            # Descending, nulls last: after a null only nulls (equal) follow.
            if value is not None:
                branches.append(
                    ops.all_of([*prefix, ops.any_of([ops.lt(col, value), ops.is_null(col)])])
                )
        else:
            step = ops.not_null(col) if value is None else ops.gt(col, value)
            branches.append(ops.all_of([*prefix, step]))
        prefix.append(ops.is_null(col) if value is None else ops.eq(col, value))
    branches.append(ops.all_of([*prefix, ops.id_gt(last_id)]))
    return ops.any_of(branches)
