"""The output stream guard: every generated chunk passes here before the client sees it.

`StreamGuard.feed(chunk)` returns only text whose checks are final. It keeps back a
tail of at least `holdback` characters (policy.output.holdback_chars, raised to the
longest bounded pattern) and never cuts inside a detected span, a digit run or a
whitespace-free token, because those could still grow into PII across chunks.
Redact rules (PII, banned phrases/competitors in "redact" mode) rewrite the text;
block rules stop the stream: the caller stops generation and sends `fallback`.

Block rules: competitor/banned phrase in "block" mode, refund amounts above
promises.max_refund_statement, compensation offers, delivery guarantees, an order id
(shaped per output.order_id_pattern) that is not in the customer's facts view, and a
status or delivery date stated for a known order that contradicts the view.
Order-fact checks run only when a facts view is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import date

import msgspec

from server.governance.pii import PiiDetector, PiiSpan
from server.governance.policy import Policy
from server.governance.routing import extract_amounts

_TAIL = 160  # emitted text kept as left context for patterns that start earlier
# Checks run once this many chars wait beyond the holdback, not on every tiny chunk:
# the rescans dominate the cost, and nothing leaves unchecked in between.
_QUANTUM = 24
_MARGIN = 4  # chars that must follow a block match before it is judged complete
_MAX_BUFFER = 4096  # a token longer than this is released at the holdback edge
_TOKEN = re.compile(r"\S+")
_REFUND_WORD = re.compile(
    r"\b(?:refund(?:ed|ing)?|reimburs\w*|credit(?:ed)?|money back|pay (?:you )?back)\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:not|never|yet to)\b|n[’']t\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?\n](?:\s|$)")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
# Claimed status word -> the actual statuses under which the claim is true.
_STATUS_CLAIMS = (
    (r"delivered|arrived", ("delivered", "returned")),
    (r"shipped|dispatched|sent out", ("shipped", "delivered", "returned")),
    (r"in transit|on (?:its|the) way|out for delivery|with the courier", ("shipped",)),
    (r"being (?:processed|prepared|packed)|processing", ("processing",)),
    (r"cancell?ed", ("cancelled",)),
    (r"returned", ("returned",)),
)


class OrderFact(msgspec.Struct, frozen=True):
    status: str  # one of server.knowledge.shop.schema.ORDER_STATUSES
    delivered_at: date | None = None


OrderFactsView = Mapping[str, OrderFact]


class Violation(msgspec.Struct, frozen=True):
    rule: str  # pii | banned_phrase | competitor | refund_amount | compensation_offer
    #            | delivery_guarantee | unknown_order | order_status | order_date
    action: str  # "redact" | "block"
    detail: str  # never holds raw PII


class GuardStep(msgspec.Struct):
    emit: str  # safe to send now
    violations: list[Violation]
    stop: bool = False  # a block fired: stop generating, send `fallback`
    fallback: str = ""


class OutputChecks:
    """The compiled output rules of one policy; share it across streams."""

    def __init__(self, policy: Policy, detector: PiiDetector | None = None) -> None:
        out, promises = policy.output, policy.promises
        self.policy = policy
        self.detector = detector or PiiDetector()
        self.fallback = out.fallback_message
        self.max_refund = promises.max_refund_statement
        self.order_id = re.compile(out.order_id_pattern)
        self.banned = [self._phrase(p) for p in out.banned_phrases]
        self.competitors = [self._phrase(p) for p in out.competitors]
        flags = re.IGNORECASE
        self.compensation = (
            [re.compile(p, flags) for p in promises.compensation_patterns]
            if promises.forbid_compensation_offers
            else []
        )
        self.guarantees = (
            [re.compile(p, flags) for p in promises.delivery_guarantee_patterns]
            if promises.forbid_delivery_guarantees
            else []
        )
        self.status_claims = [(re.compile(rf"\b(?:{p})\b", flags), ok) for p, ok in _STATUS_CLAIMS]
        longest = max((len(p) for p in (*out.banned_phrases, *out.competitors)), default=0)
        self.holdback = max(out.holdback_chars, self.detector.max_bounded_span, longest + 8)

    @staticmethod
    def _phrase(text: str) -> re.Pattern[str]:
        words = [re.escape(w) for w in text.split()]
        return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class StreamGuard:
    """Checks one answer stream; create one per Respond call."""

    def __init__(
        self,
        policy: Policy,
        facts: OrderFactsView | None,
        allow_ids: Collection[str] = (),
        *,
        rules: OutputChecks | None = None,
    ) -> None:
        self.rules = rules if rules is not None and rules.policy is policy else OutputChecks(policy)
        self.facts = facts
        self.allow = frozenset(allow_ids)
        self._tail = ""
        self._buf = ""
        self._stopped = False

    def feed(self, chunk: str) -> GuardStep:
        if self._stopped:
            return self._halted([])
        self._buf += chunk
        if len(self._buf) < self.rules.holdback + _QUANTUM:
            return GuardStep("", [])
        return self._step(final=False)

    def finish(self) -> GuardStep:
        if self._stopped:
            return self._halted([])
        step = self._step(final=True)
        self._stopped = True
        return step

    # -- one pass ------------------------------------------------------------------------

    def _halted(self, violations: list[Violation]) -> GuardStep:
        self._stopped = True
        self._buf = ""
        return GuardStep("", violations, stop=True, fallback=self.rules.fallback)

    def _step(self, final: bool) -> GuardStep:
        ctx = self._tail + self._buf
        off, n = len(self._tail), len(ctx)
        block = self._first_block(ctx, off, final)
        if block is not None:
            return self._halted([block])
        spans = self._redactions(ctx, off)
        cut = n if final else n - self.rules.holdback
        if cut > off and not final:
            sticky = [(s.start, s.end) for s, _, _ in spans]
            sticky += self.rules.detector.digit_runs(ctx)
            if n - off <= _MAX_BUFFER:
                sticky += [(m.start(), m.end()) for m in _TOKEN.finditer(ctx, off)]
            moved = True
            while moved:
                moved = False
                for s, e in sticky:
                    if s < cut < e:
                        cut, moved = s, True
        if cut <= off:
            return GuardStep("", [])
        parts, pos, violations = [], off, []
        for span, placeholder, violation in spans:
            if span.start >= cut:
                break
            parts.append(ctx[pos : max(pos, span.start)])
            parts.append(placeholder)
            pos = span.end
            violations.append(violation)
        parts.append(ctx[pos:cut])
        self._tail = ctx[max(0, cut - _TAIL) : cut]
        self._buf = ctx[cut:]
        return GuardStep("".join(parts), violations)

    def _redactions(self, ctx: str, off: int) -> list[tuple[PiiSpan, str, Violation]]:
        """Non-overlapping redactions that end in the unemitted part, by start."""
        r = self.rules
        out: list[tuple[PiiSpan, str, Violation]] = []
        for s in r.detector.detect(ctx, self.allow):
            if s.end > off:
                v = Violation("pii", "redact", f"{s.kind} redacted")
                out.append((PiiSpan(s.kind, max(s.start, off), s.end), f"[{s.kind}]", v))
        phrase_sets = []
        if r.policy.output.banned_phrase_action == "redact":
            phrase_sets.append(
                ("banned_phrase", r.banned, r.policy.output.banned_phrase_placeholder)
            )
        if r.policy.output.competitor_action == "redact":
            phrase_sets.append(
                ("competitor", r.competitors, r.policy.output.competitor_placeholder)
            )
        for rule, patterns, placeholder in phrase_sets:
            for rx in patterns:
                for m in rx.finditer(ctx):
                    start, end = max(m.start(), off), m.end()
                    if end <= off or any(x.start < end and start < x.end for x, _, _ in out):
                        continue
                    out.append(
                        (
                            PiiSpan(rule, start, end),
                            placeholder,
                            Violation(rule, "redact", f"{rule} removed: {m.group()}"),
                        )
                    )
        out.sort(key=lambda t: t[0].start)
        return out

    def _first_block(self, ctx: str, off: int, final: bool) -> Violation | None:
        n = len(ctx)

        def ready(end: int) -> bool:
            return end > off and (final or end + _MARGIN <= n)

        r, out = self.rules, self.rules.policy.output
        checks: list[tuple[str, list[re.Pattern[str]]]] = [
            ("compensation_offer", r.compensation),
            ("delivery_guarantee", r.guarantees),
        ]
        if out.competitor_action == "block":
            checks.append(("competitor", r.competitors))
        if out.banned_phrase_action == "block":
            checks.append(("banned_phrase", r.banned))
        for rule, patterns in checks:
            for rx in patterns:
                for m in rx.finditer(ctx):
                    if ready(m.end()):
                        return Violation(rule, "block", f"{rule}: {m.group()[:60]}")
        for money in extract_amounts(ctx):
            if not ready(money.end) or money.amount <= r.max_refund:
                continue
            lo = max(0, money.start - 60)
            sentence_start = max(
                (m.end() for m in _SENTENCE_END.finditer(ctx, lo, money.start)), default=lo
            )
            hi = min(n, money.end + 40)
            after = _SENTENCE_END.search(ctx, money.end, hi)
            window = ctx[sentence_start : after.start() if after else hi]
            if _REFUND_WORD.search(window):
                return Violation(
                    "refund_amount",
                    "block",
                    f"refund of {money.amount:.2f} {money.currency} above {r.max_refund:.2f}",
                )
        if self.facts is not None:
            return self._order_fact_block(ctx, ready)
        return None

    def _order_fact_block(self, ctx: str, ready: Callable[[int], bool]) -> Violation | None:
        facts = self.facts
        if facts is None:
            return None
        ids = list(self.rules.order_id.finditer(ctx))
        for i, m in enumerate(ids):
            oid = m.group()
            fact = facts.get(oid)
            if fact is None:
                if ready(m.end()):
                    return Violation("unknown_order", "block", f"order {oid} is not the customer's")
                continue
            # The claim about this order runs to the sentence end or the next order id.
            limit = min(len(ctx), m.end() + 100)
            if i + 1 < len(ids):
                limit = min(limit, ids[i + 1].start())
            end_m = _SENTENCE_END.search(ctx, m.end(), limit)
            window_end = end_m.start() if end_m else limit
            for rx, true_under in self.rules.status_claims:
                for sm in rx.finditer(ctx, m.end(), window_end):
                    if not ready(sm.end()):
                        continue
                    if _NEGATION.search(ctx, m.end(), sm.start()):
                        continue
                    if fact.status not in true_under:
                        return Violation(
                            "order_status",
                            "block",
                            f"order {oid}: claimed '{sm.group()}' but status is {fact.status}",
                        )
                    if fact.delivered_at is not None and true_under[0] == "delivered":
                        dm = _ISO_DATE.search(ctx, sm.end(), window_end)
                        if dm and ready(dm.end()) and dm.group() != fact.delivered_at.isoformat():
                            return Violation(
                                "order_date", "block", f"order {oid}: claimed delivery {dm.group()}"
                            )
        return None
