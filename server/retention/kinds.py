"""The five retention kinds: from one customer's history to the actions due in a window.

Each kind proposes what is due with `due_at` in [start, end), from events that had
happened by `now` (an earlier `now` judges the snapshot's history as of then; the
cadence and order-gap estimates still come from the whole snapshot), and drops what
lapsed (due more than the policy's stale days before `now`):

- follow_up: `follow_up_days` after each delivery;
- replenish: a consumable's last purchase plus its predicted gap (the product's
  cadence at the customer's own pace, from their re-buys; the product's alone for a
  first purchase); score from `kernels.replenish` (1 = exactly due);
- warranty_expiry: `warranty_lead_days` before a warranty ends (none with a claim open);
- win_back: silent for `win_back_factor` x the customer's usual gap between orders (at
  least `win_back_min_days`; `win_back_single_order_days` after a first and only order);
- cross_sell: `cross_sell_days` after the latest delivery, the recommender's top product
  that is not a re-buy, with the recommender's own reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from kernels.replenish import replenishment_scores
from server.governance.policy import RetentionPolicy
from server.retention.history import CustomerHistory, from_days, to_days
from server.retention.types import RetentionAction

# (customer_id, now) -> [(product_id, title, score, reason)], best first.
CrossSellFn = Callable[[str, datetime], list[tuple[str, str, float, str]]]


@dataclass(frozen=True)
class Window:
    """Actions due in [start, end) as seen at `now` (stale ones dropped)."""

    now: datetime
    start: datetime
    end: datetime


def _freshness(due: datetime, now: datetime, stale_days: int) -> float:
    """1 when due exactly now, falling linearly to 0.5 at the stale limit; 1 for future."""
    late = (now - due).total_seconds() / 86400.0
    if late <= 0:
        return 1.0
    return max(0.0, 1.0 - 0.5 * late / max(stale_days, 1))


def _in(window: Window, due: datetime, stale_days: int) -> bool:
    return window.start <= due < window.end and window.now - timedelta(days=stale_days) <= due


class ActionFactory:
    """Builds actions with the policy's channel, weight and message for their kind."""

    def __init__(self, policy: RetentionPolicy, titles: Callable[[str], str]) -> None:
        self.policy = policy
        self._title = titles

    def make(self, kind: str, h: CustomerHistory, due: datetime, timeliness: float,
             reason: str, product_id: str = "", order_id: str = "", date: str = "",
             days: int = 0) -> RetentionAction:
        p = self.policy
        title = self._title(product_id) if product_id else ""
        return RetentionAction(
            kind=kind, customer_id=h.customer_id, due_at=due,
            score=round(p.weights[kind] * max(0.0, min(timeliness, 1.0)), 6), reason=reason,
            channel=p.channels[kind],
            message=p.messages[kind].format(title=title, order=order_id, date=date, days=days),
            product_id=product_id, order_id=order_id,
        )


def follow_ups(h: CustomerHistory, w: Window, f: ActionFactory) -> Iterable[RetentionAction]:
    days = f.policy.follow_up_days
    for o in h.delivered:
        assert o.delivered_at is not None
        if o.delivered_at > w.now:  # not delivered yet as of `now`
            continue
        due = o.delivered_at + timedelta(days=days)
        if _in(w, due, f.policy.stale_days):
            yield f.make("follow_up", h, due, _freshness(due, w.now, f.policy.stale_days),
                         f"order {o.order_id} was delivered on {o.delivered_at:%Y-%m-%d}; "
                         f"follow up {days} days after delivery", order_id=o.order_id,
                         date=f"{o.delivered_at:%Y-%m-%d}", days=days)


def replenishments(h: CustomerHistory, w: Window, f: ActionFactory
                   ) -> Iterable[RetentionAction]:
    if not h.consumables:
        return
    last = np.array([c.last_day for c in h.consumables])
    gap = np.array([c.next_gap_days for c in h.consumables])
    scores = replenishment_scores(last, gap, to_days(w.now))
    today = to_days(w.now)
    for c, score in zip(h.consumables, scores.tolist(), strict=True):
        due = from_days(c.last_day + c.next_gap_days)
        if c.last_day > today or not _in(w, due, f.policy.stale_days):
            continue
        whose = (f"at your own pace, x{c.pace:.2f} the product's usual cadence"
                 if c.paced else "the product's usual cadence")
        bought = from_days(c.last_day)
        yield f.make("replenish", h, due, score,
                     f"last bought on {bought:%Y-%m-%d}; re-bought about every "
                     f"{round(c.next_gap_days)} days ({whose})", product_id=c.product_id,
                     order_id=c.last_order_id, date=f"{bought:%Y-%m-%d}",
                     days=round(c.next_gap_days))


def warranty_expiries(h: CustomerHistory, w: Window, f: ActionFactory
                      ) -> Iterable[RetentionAction]:
    lead = f.policy.warranty_lead_days
    for wy in h.warranties:
        if wy.claim_status == "open" or wy.expires_at <= w.now or wy.starts_at > w.now:
            continue
        due = wy.expires_at - timedelta(days=lead)
        if _in(w, due, lead):  # stale once the warranty has ended
            left = max(0, (wy.expires_at - w.now).days)
            yield f.make("warranty_expiry", h, due, 1.0 - 0.5 * left / max(lead, 1) if
                         due <= w.now else 0.5,
                         f"{wy.kind} warranty {wy.warranty_id} ends on "
                         f"{wy.expires_at:%Y-%m-%d} ({left} days left)",
                         product_id=wy.product_id, order_id=wy.order_id,
                         date=f"{wy.expires_at:%Y-%m-%d}", days=left)


def win_backs(h: CustomerHistory, w: Window, f: ActionFactory) -> Iterable[RetentionAction]:
    placed = [o for o in h.orders if o.ordered_at <= w.now]
    if not placed:
        return
    p = f.policy
    last = placed[-1]
    if math.isnan(h.order_gap_days):
        silent = float(p.win_back_single_order_days)
        usual = "one order so far"
    else:
        silent = max(p.win_back_factor * h.order_gap_days, float(p.win_back_min_days))
        usual = f"usually orders every {round(h.order_gap_days)} days"
    due = last.ordered_at + timedelta(days=silent)
    if not _in(w, due, p.win_back_stale_days):
        return
    since = (w.now - last.ordered_at).days
    # Frequent customers are worth more: 2+ orders count fully, one order half.
    value = 1.0 if len(placed) >= 2 else 0.5
    yield f.make("win_back", h, due, value * _freshness(due, w.now, p.win_back_stale_days),
                 f"no order since {last.ordered_at:%Y-%m-%d} ({since} days; {usual})",
                 order_id=last.order_id, date=f"{last.ordered_at:%Y-%m-%d}", days=since)


def cross_sells(h: CustomerHistory, w: Window, f: ActionFactory, recommend: CrossSellFn,
                skip: set[str]) -> Iterable[RetentionAction]:
    delivered = [o for o in h.delivered if o.delivered_at is not None
                 and o.delivered_at <= w.now]
    if not delivered:
        return
    latest = delivered[0]
    assert latest.delivered_at is not None
    due = latest.delivered_at + timedelta(days=f.policy.cross_sell_days)
    if not _in(w, due, f.policy.stale_days):
        return
    for pid, _title, _score, reason in recommend(h.customer_id, w.now):
        if pid in skip:
            continue
        # The recommender's scores mix several signals on no common scale: the kind's
        # weight and the timing rank it among the other nudges.
        yield f.make("cross_sell", h, due, _freshness(due, w.now, f.policy.stale_days),
                     f"{reason} (after order {latest.order_id})", product_id=pid,
                     order_id=latest.order_id)
        return


def actions_for(h: CustomerHistory, w: Window, f: ActionFactory, kinds: frozenset[str],
                recommend: CrossSellFn | None) -> list[RetentionAction]:
    """Every action of `kinds` due for the customer in the window, best first."""
    out: list[RetentionAction] = []
    if "follow_up" in kinds:
        out += follow_ups(h, w, f)
    if "replenish" in kinds:
        out += replenishments(h, w, f)
    if "warranty_expiry" in kinds:
        out += warranty_expiries(h, w, f)
    if "win_back" in kinds:
        out += win_backs(h, w, f)
    if "cross_sell" in kinds and recommend is not None:
        # A consumable that is due again is a re-buy, not a cross-sell.
        rebuy = {c.product_id for c in h.consumables}
        out += cross_sells(h, w, f, recommend, rebuy)
    out.sort(key=lambda a: (-a.score, a.due_at, a.kind, a.product_id, a.order_id))
    return out
