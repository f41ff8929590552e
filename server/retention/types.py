"""Retention domain values: one action (a nudge), and the suppression reasons."""

from __future__ import annotations

from datetime import datetime

import msgspec

# Why an action was held back, in the order they are checked.
SUPPRESSIONS = ("open_complaint", "pending_handoff", "open_refund", "pending_approval",
                "marketing_opt_out", "frequency_cap")


class RetentionAction(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # follow_up | replenish | warranty_expiry | win_back | cross_sell
    customer_id: str
    due_at: datetime
    score: float  # in [0, 1]: the kind's policy weight x how timely it is
    reason: str
    channel: str  # "" when suppressed: never send it
    message: str
    product_id: str = ""
    order_id: str = ""
    suppressed: tuple[str, ...] = ()  # codes from SUPPRESSIONS

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """One nudge: issuing it again is the same nudge, not a new one."""
        return (self.customer_id, self.kind, self.product_id, self.order_id,
                self.due_at.isoformat())
