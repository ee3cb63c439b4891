"""The edge's CDRs into the portal: each node's sm_cdrs table (written by kamailio.cfg, one row
per call) is read by id watermark, in bounded batches, and each batch is imported
(apps.cdrs.services.cdrs_import_edge_records) in the transaction that advances the node's
watermark: a run that dies mid-batch rolls back both, and the next run reads the same
records again. A record imported twice is skipped (the CDR's (node, edge_id) identity), so
nothing is lost or doubled whatever stops where.

Ids are not commit order. Kamailio's async workers insert concurrently, so id 11 can commit
after id 12: a watermark moved to 12 when 12 is seen would skip 11 forever. The watermark
therefore stops before the first missing id, unless the record after it was written more
than EDGE_CDR_SETTLE_SECONDS ago (by the node database's clock): an insert is one statement
that commits within milliseconds, so an id still missing by then belongs to an insert that
rolled back (or a sequence value never used) and is passed. Records after a gap that is not
settled yet are imported at once all the same (a late one does not hold up the others'
rating); they are read again, and skipped, until the gap closes or settles.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.cdrs.services import cdrs_import_edge_records
from apps.edge import clients
from apps.edge.models import EdgeCdrWatermark, EdgeNode

logger = logging.getLogger(__name__)


@dataclass
class CdrImportRun:
    node: str
    batches: int = 0
    read: int = 0
    cdrs: int = 0
    rejected: int = 0
    watermark: int = 0
    # A missing id the watermark waits at (0 when none): a record not committed yet.
    waiting_at: int = 0


def watermark_after(watermark: int, cdrs: Sequence[clients.NodeCdr]) -> int:
    """The highest id up to which every record is known to be in `cdrs` (in id order) or
    never to come: the watermark stops before a missing id unless the record after it is
    settled (see the module's docstring)."""
    mark = watermark
    for cdr in cdrs:
        if cdr.record.edge_id != mark + 1 and not cdr.settled:
            break
        mark = cdr.record.edge_id
    return mark


def _watermark_advance(mark: EdgeCdrWatermark, last_id: int) -> None:
    # Its own function: the tests stop a batch here, after the insert and before the
    # commit, as a worker killed at that point would.
    mark.last_id = last_id
    mark.imported_at = timezone.now()
    mark.save(update_fields=["last_id", "imported_at"])


def edge_cdrs_import(*, node: EdgeNode, batch_size: int | None = None, max_batches: int = 4) -> CdrImportRun:
    """Import the node's new call records, batch after batch, until none is left or
    `max_batches`. Raises clients.EdgeNodeError when the node's database cannot be read
    (what was imported before stays). Callers keep runs of one node from overlapping (the
    task's lock); if two did overlap, the watermark check makes the later one stop."""
    batch_size = batch_size or settings.EDGE_CDR_BATCH_SIZE
    run = CdrImportRun(node=node.name)
    mark, _ = EdgeCdrWatermark.objects.get_or_create(node=node)
    watermark = mark.last_id
    for _ in range(max_batches):
        cdrs = clients.node_cdrs_read(
            node.database_url, after=watermark, limit=batch_size, settle_seconds=settings.EDGE_CDR_SETTLE_SECONDS
        )
        new_mark = watermark_after(watermark, cdrs)
        with transaction.atomic():
            mark = EdgeCdrWatermark.objects.select_for_update().get(node=node)
            if mark.last_id != watermark:
                logger.warning("edge %s: CDR watermark moved under this run; leaving it to the other", node.name)
                break
            imported = cdrs_import_edge_records(node=node.name, records=[c.record for c in cdrs])
            if new_mark != watermark:
                _watermark_advance(mark, new_mark)
        run.batches += 1
        run.read += len(cdrs)
        run.cdrs += imported.cdrs
        run.rejected += imported.rejected
        if new_mark < (cdrs[-1].record.edge_id if cdrs else watermark):
            run.waiting_at = new_mark + 1
        watermark = new_mark
        # A short batch was the last; a full one that did not move the watermark (records
        # behind a gap) would read the same again.
        if len(cdrs) < batch_size or run.waiting_at:
            break
    run.watermark = watermark
    return run
