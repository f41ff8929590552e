"""protobuf conversions for NextBestActions and ScanActions."""

from __future__ import annotations

from aftercare.v1 import support_pb2, types_pb2
from server.retention.service import NextBestActions, ScanReport
from server.retention.types import RetentionAction


def retention_action_pb(a: RetentionAction) -> types_pb2.RetentionAction:
    return types_pb2.RetentionAction(
        kind=a.kind, product_id=a.product_id, order_id=a.order_id,
        due_at=a.due_at.isoformat().replace("+00:00", "Z"), score=a.score, reason=a.reason,
        channel=a.channel, message=a.message, customer_id=a.customer_id,
    )


def next_best_actions_pb(result: NextBestActions) -> support_pb2.NextBestActionsResponse:
    return support_pb2.NextBestActionsResponse(
        actions=[retention_action_pb(a) for a in result.actions],
        snapshot_id=result.snapshot_id,
    )


def scan_trailers(report: ScanReport) -> tuple[tuple[str, str], ...]:
    """Trailing metadata of a scan: actions sent and suppressed per reason."""
    return (("actions-sent", str(report.sent)),
            *((f"suppressed-{reason.replace('_', '-')}", str(n))
              for reason, n in report.counts.as_dict().items()))
