"""What a table commit needs, derived from its update list (the client's intent, not its claim).

* ``add-snapshot``: by the snapshot summary's operation: ``append`` → INSERT, ``overwrite`` and
  ``replace`` → UPDATE, ``delete`` → DELETE; a snapshot without a summary needs all three;
* ``set-snapshot-ref`` to a snapshot added in the same commit, and statistics of such a snapshot,
  come with that snapshot (nothing more); any other ref or statistics change → ALTER;
* ``remove-snapshots``, ``remove-snapshot-ref``, schema, partition spec, sort order, properties,
  location, format version and uuid updates → ALTER;
* a commit with requirements only (no update) changes nothing and needs SELECT.

A commit needing several privileges needs all of them. A create through a commit
(``assert-create``) needs CREATE on the namespace instead (see :func:`creates_table`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    AssertCreate,
    SetPartitionStatisticsUpdate,
    SetSnapshotRefUpdate,
    SetStatisticsUpdate,
    TableRequirement,
    TableUpdate,
)

from catalog.authz.model import Privilege

_BY_OPERATION = {
    Operation.APPEND: Privilege.INSERT,
    Operation.OVERWRITE: Privilege.UPDATE,
    Operation.REPLACE: Privilege.UPDATE,
    Operation.DELETE: Privilege.DELETE,
}
_ANY_WRITE = frozenset({Privilege.INSERT, Privilege.UPDATE, Privilege.DELETE})


def creates_table(requirements: Sequence[TableRequirement]) -> bool:
    return any(isinstance(r, AssertCreate) for r in requirements)


def commit_privileges(updates: Sequence[TableUpdate]) -> frozenset[Privilege]:
    """The privileges a commit of ``updates`` to an existing table needs."""
    if not updates:
        return frozenset({Privilege.SELECT})
    added = {u.snapshot.snapshot_id for u in updates if isinstance(u, AddSnapshotUpdate)}
    needs: set[Privilege] = set()
    for update in updates:
        if isinstance(update, AddSnapshotUpdate):
            summary = update.snapshot.summary
            if summary is None:
                needs |= _ANY_WRITE
            else:
                needs.add(_BY_OPERATION.get(summary.operation, Privilege.UPDATE))
        elif isinstance(update, SetSnapshotRefUpdate):
            if update.snapshot_id not in added:
                needs.add(Privilege.ALTER)
        elif isinstance(update, SetStatisticsUpdate):
            if update.statistics.snapshot_id not in added:
                needs.add(Privilege.ALTER)
        elif isinstance(update, SetPartitionStatisticsUpdate):
            if update.partition_statistics.snapshot_id not in added:
                needs.add(Privilege.ALTER)
        else:
            needs.add(Privilege.ALTER)
    return frozenset(needs)
