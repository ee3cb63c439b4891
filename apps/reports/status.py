"""The status page: how the service is doing now, composed from the selectors of the apps that
own each part (edge nodes and CDR imports, the rating queue, the task broker, the Stripe
webhook inbox). The figures are the platform's, the same for every company: none names a
company or its data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from apps.billing.purchases.selectors import WebhookInbox, stripe_events_unprocessed
from apps.cdrs.selectors import RatingBacklog, rating_backlog
from apps.core.queues import QueueDepth, broker_queue_depths
from apps.edge.live import NodeNow, nodes_now
from apps.edge.selectors import CdrImport, cdr_imports


@dataclass(frozen=True)
class ServiceStatus:
    checked_at: datetime
    nodes: list[NodeNow]
    imports: list[CdrImport]
    rating: RatingBacklog
    queues: list[QueueDepth]
    payments: WebhookInbox

    @property
    def rating_lag(self) -> timedelta | None:
        """How long the oldest call waiting to be rated has waited since it ended."""
        if self.rating.oldest_ended_at is None:
            return None
        return max(timedelta(0), self.checked_at - self.rating.oldest_ended_at)

    @property
    def rating_lag_text(self) -> str:
        lag = self.rating_lag
        return "none" if lag is None else _duration(lag)

    @property
    def node_rows(self) -> list[tuple[NodeNow, CdrImport | None]]:
        imports = {i.node: i for i in self.imports}
        return [(node, imports.get(node.node)) for node in self.nodes]

    @property
    def nodes_down(self) -> int:
        return sum(1 for node in self.nodes if not node.up)


def _duration(lag: timedelta) -> str:
    seconds = int(lag.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def service_status(*, timeout: float | None = None) -> ServiceStatus:
    """Every figure of the status page; the nodes are asked within EDGE_STATUS_TIMEOUT_MS and
    the broker within a second, whatever they do."""
    return ServiceStatus(
        checked_at=timezone.now(),
        nodes=nodes_now(timeout=timeout),
        imports=cdr_imports(),
        rating=rating_backlog(),
        queues=broker_queue_depths(),
        payments=stripe_events_unprocessed(),
    )
