"""Which actions must not be sent, and why: open issues, opt-outs, the frequency cap.

Checked per customer, in `SUPPRESSIONS` order; every reason that applies is kept (and
counted), so the caller sees all of them:

- open_complaint: a complaint intent in an unresolved handoff, or in a decision within
  the policy's `complaint_days`;
- pending_handoff: any other unresolved handoff;
- open_refund: a return whose refund is still requested or approved (the shop's data);
- pending_approval: an action waiting for a person's approval (the record store);
- marketing_opt_out: the customer opted out, for the policy's `marketing_kinds`;
- frequency_cap: more than `frequency_cap` distinct actions per customer and channel
  within `frequency_cap_days` (an action issued before is the same nudge, not a new one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from server.governance.policy import RetentionPolicy
from server.records.retention import Key, OpenIssues
from server.retention.history import CustomerHistory
from server.retention.types import SUPPRESSIONS, RetentionAction


@dataclass
class SuppressionCounts:
    """Actions held back per reason (an action held back for two reasons counts twice)."""

    by_reason: Counter[str] = field(default_factory=Counter)
    issued: int = 0

    def as_dict(self) -> dict[str, int]:
        return {r: self.by_reason.get(r, 0) for r in SUPPRESSIONS}


def customer_suppressions(h: CustomerHistory, issues: OpenIssues) -> list[tuple[str, str]]:
    """(code, detail) for every open issue of the customer (all kinds held back)."""
    cid = h.customer_id
    out = []
    if cid in issues.complaints:
        out.append(("open_complaint", "an open complaint"))
    if cid in issues.handoffs:
        out.append(("pending_handoff", "a handoff to a person is pending"))
    if h.open_refunds:
        orders = ", ".join(sorted(set(h.open_refunds)))
        out.append(("open_refund", f"a refund is open for order {orders}"))
    if cid in issues.approvals:
        out.append(("pending_approval", "an action awaits approval"))
    return out


def apply(actions: list[RetentionAction], h: CustomerHistory, issues: OpenIssues,
          policy: RetentionPolicy, issued: Mapping[str, set[Key]],
          counts: SuppressionCounts) -> list[RetentionAction]:
    """The customer's actions (best first) with suppression marked; unsuppressed first.

    `issued` maps a channel to the keys of actions issued to this customer within the
    cap window. A suppressed action keeps its kind and timing, loses its channel and
    says why in `reason`."""
    held = customer_suppressions(h, issues)
    used = {ch: set(keys) for ch, keys in issued.items()}
    kept: list[RetentionAction] = []
    dropped: list[RetentionAction] = []
    for a in actions:
        reasons = list(held)
        if not h.marketing_opt_in and a.kind in policy.marketing_kinds:
            reasons.append(("marketing_opt_out", "the customer opted out of marketing"))
        if not reasons:
            keys = used.setdefault(a.channel, set())
            if a.key not in keys and len(keys) >= policy.frequency_cap:
                reasons.append(("frequency_cap", f"{len(keys)} {a.channel} actions in the "
                                f"last {policy.frequency_cap_days} days (cap "
                                f"{policy.frequency_cap})"))
            else:
                keys.add(a.key)
        if reasons:
            counts.by_reason.update(code for code, _ in reasons)
            why = "; ".join(detail for _, detail in reasons)
            dropped.append(msgspec.structs.replace(
                a, channel="", reason=f"suppressed ({why}): {a.reason}",
                suppressed=tuple(code for code, _ in reasons)))
        else:
            counts.issued += 1
            kept.append(a)
    return kept + dropped
