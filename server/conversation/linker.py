"""Reference linking: which of the customer's own orders and items a message is about.

Signals, strongest first:
- explicit order ids, also in free forms ("O0000854", "o854", "order 854", "order no. 854",
  "#854"), matched by number against the customer's orders;
- product mentions: title words (with plurals and small typos), brand, category words,
  and, when nothing matches by words, embedding similarity against the titles of the
  customer's order lines;
- dates ("the one I bought in March", "last month", "February 13");
- "the last one", "my latest order".
Signals combine: "the chocolate I bought in March" keeps the chocolate orders of March.
The result is a `Link` with a confidence, the choice and every candidate, so the
decision record can show what was considered. Several equally good candidates make
the link ambiguous: the caller asks (server/conversation/clarify.py) instead of guessing.

`resolve_answer` reads an answer to a clarifying question ("the chocolate", "the second
one", "O0000854", "the one from March") against the candidates that were listed.
Pure functions over plain values; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from difflib import SequenceMatcher

import msgspec

from server.knowledge.graph.facts import OrderFacts

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(_MONTHS)} | {"sept": 9}
_MONTH_RX = "|".join(sorted({*_MONTHS, *_MONTH_ABBR}, key=len, reverse=True))
_FULL_ID = re.compile(r"(?<![\w-])([A-Za-z])0*(\d{1,8})(?![\w-])")
_NUMBER_REF = re.compile(
    r"(?:\border\s*(?:no\.?|nr\.?|number|num\.?|id|#)?\s*#?\s*|#\s*)(\d{1,8})\b", re.IGNORECASE)
_DATE_MONTH = re.compile(
    rf"\b(?:in|from|on|during|since|of|around|early|late|mid)\s+(?:-\s*)?({_MONTH_RX})\b\.?"
    rf"(?:\s+(\d{{4}}))?|\b({_MONTH_RX})\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)?"
    rf"\s+(?:of\s+)?({_MONTH_RX})\b", re.IGNORECASE)
_LAST_MONTH = re.compile(r"\blast\s+month\b", re.IGNORECASE)
_LAST_WEEK = re.compile(r"\b(?:last|this|past)\s+week\b", re.IGNORECASE)
_LATEST = re.compile(
    r"\b(?:last|latest|most\s+recent|newest|recent)\s+(?:one|order|purchase|parcel|package|"
    r"delivery|thing|item|buy)\b|\bthe\s+last\s+one\b|\b(?:my|the)\s+(?:last|latest)\b(?!\s+"
    r"(?:week|month|year|time))", re.IGNORECASE)
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "one": 1,
             "two": 2, "three": 3, "1": 1, "2": 2, "3": 3}
_ORDINAL = re.compile(
    r"\b(first|1st|second|2nd|third|3rd)\b|\b(?:number|no\.?|option|#)\s*(one|two|three|[123])\b"
    r"|^\s*(?:the\s+)?([123])\s*[.!)]?\s*$|\b(?:the\s+)?(last)\s+one\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9%'-]*")
_STOP_WORDS = """
a an the i me my mine we our you your it its this that these those them they he she his her
is are was were be been am do does did doing have has had will would can could should may
might must shall of for to in on at by with from into about as and or but not no yes so if
then than too very just also still please hi hello hey thanks thank ok okay dear
want wanted need needed like would love get got give send sent return returned returning
returns refund refunded exchange replace replacement cancel cancelled change changed order
orders ordered item items product products thing things one ones piece stuff bought buy
purchase purchased package parcel delivery delivered arrive arrived arriving ship shipped
where when what which who how why status track tracking still yet again help issue problem
broken damaged wrong faulty defective working work works stopped doesn't don't didn't isn't
warranty claim last latest recent new old first second third time week month year day days
back money number no nr id many much some any all there here today yesterday tomorrow
received receive got good bad great am pm its i'm i've i'd can't won't it's
"""
_STOP = frozenset(_STOP_WORDS.split())
_KEEP_EXACT = re.compile(r"^\d|%")  # numbers and sizes: exact matches only


class Candidate(msgspec.Struct, frozen=True):
    """One order (and item, when a product was mentioned) the message may be about."""

    order_id: str
    ordered_at: str  # ISO date
    product_id: str = ""
    title: str = ""  # the matched item's title, else the order's first item
    score: float = 0.0


class Link(msgspec.Struct, frozen=True):
    """What the message refers to among the customer's facts."""

    order_id: str = ""
    product_id: str = ""
    confidence: float = 0.0
    how: str = "none"  # id | product | date | latest | state | answer | only | recent | none
    candidates: list[Candidate] = []  # what was considered, best first
    ambiguous: bool = False  # several candidates fit equally well: ask, do not guess
    unknown_ids: list[str] = []  # order numbers named that are not the customer's


class ProductInfo(msgspec.Struct, frozen=True):
    title: str
    brand: str = ""
    category: str = ""


def stem(word: str) -> str:
    """A light English plural stem: shoes -> shoe, batteries -> battery, boxes -> box."""
    w = word.lower().strip("'")
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ches", "shes", "xes", "sses")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def content_words(text: str) -> list[str]:
    """Stemmed words that can name a product (stop words and intent words dropped)."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1]


def _similar(a: str, b: str) -> bool:
    if a == b:
        return True
    if _KEEP_EXACT.search(a) or _KEEP_EXACT.search(b) or min(len(a), len(b)) < 5:
        return False
    if a[0] != b[0] or abs(len(a) - len(b)) > 2:
        return False
    return SequenceMatcher(None, a, b).ratio() >= 0.84


def product_scores(text: str, products: Mapping[str, ProductInfo],
                   similarity: Mapping[str, float] | None = None,
                   min_similarity: float = 0.3, min_margin: float = 0.12) -> dict[str, float]:
    """Score in (0, 1] for each product the text mentions: title words 0.6-1.0 (more of
    the title named scores higher), brand 0.55, category words 0.5. Only when no product
    matched by words: the product whose title embedding is closest to the message, if it
    is at least `min_similarity` and beats the next one by `min_margin` (scored 0.3-0.55,
    below any word match)."""
    words = set(content_words(text))
    scores: dict[str, float] = {}
    if words:
        for pid, info in products.items():
            title = set(content_words(info.title))
            hit = {t for t in title if any(_similar(w, t) for w in words)}
            if hit:
                scores[pid] = 0.6 + 0.4 * len(hit) / len(title)
                continue
            if info.brand and set(content_words(info.brand)) & words:
                scores[pid] = 0.55
                continue
            parts = [p for p in info.category.split("/") if p][1:]
            if set(content_words(" ".join(parts))) & words:
                scores[pid] = 0.5
    # A full title in the text beats any partial match; of titles that contain one
    # another ("Case for Orbit 3" in "Case for Orbit 3 Mini"), the longest is the one meant.
    low = text.casefold()
    exact = {p: products[p].title.casefold() for p in scores
             if products[p].title.casefold() in low}
    for p, t in exact.items():
        if not any(t != u and t in u for u in exact.values()):
            scores[p] = 1.1
    if not scores and similarity and words:
        ranked = sorted(((s, p) for p, s in similarity.items() if p in products), reverse=True)
        if ranked and ranked[0][0] >= min_similarity and (
                len(ranked) == 1 or ranked[0][0] - ranked[1][0] >= min_margin):
            scores[ranked[0][1]] = round(0.3 + 0.25 * ranked[0][0], 4)
    return scores


def mask_titles(text: str, titles: Sequence[str], mask: str = "item") -> str:
    """The text with full product titles replaced by `mask` (longest first), so that a
    title's words do not sway the intent classifier."""
    low = text.casefold()
    for title in sorted(titles, key=len, reverse=True):
        t = title.casefold()
        start = low.find(t) if len(t.split()) >= 2 else -1
        if start >= 0:
            text = text[:start] + mask + text[start + len(t):]
            low = low[:start] + mask + low[start + len(t):]
    return text


def mask_order_refs(text: str) -> str:
    """The text without order numbers ("order no. 5222" -> "order", "O0000854" -> ""), for
    the intent classifier: the number says which order, not what the customer wants."""
    text = _NUMBER_REF.sub(lambda m: "order " if m.group(0).lower().startswith("order")
                           else "", text)
    text = re.sub(r"(?<![\w-])[A-Za-z]\d{3,8}(?![\w-])", "", text)
    return re.sub(r"\s+([?.!,])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()


def explicit_order_ids(text: str, orders: Sequence[OrderFacts]) -> tuple[list[str], list[str]]:
    """(the customer's order ids named in the text, in order; numbers named that match none
    of them). Full ids match by their number too, so "o854" finds "O0000854"."""
    by_number: dict[int, str] = {}
    for o in orders:
        digits = re.sub(r"\D", "", o.order_id)
        if digits:
            by_number.setdefault(int(digits), o.order_id)
    own = {o.order_id.upper() for o in orders}
    found: dict[str, None] = {}
    unknown: dict[str, None] = {}
    for m in _FULL_ID.finditer(text):
        raw = m.group(0).upper()
        if raw in own:
            found[raw] = None
        elif len(m.group(0)) >= 4 and m.group(1).upper() == _prefix(orders):
            hit = by_number.get(int(m.group(2)))
            if hit:
                found[hit] = None
            else:
                unknown[raw] = None
    for m in _NUMBER_REF.finditer(text):
        hit = by_number.get(int(m.group(1)))
        if hit:
            found[hit] = None
        elif len(m.group(1)) >= 3:
            unknown[m.group(1)] = None
    return list(found), [u for u in unknown if u not in found]


def _prefix(orders: Sequence[OrderFacts]) -> str:
    return orders[0].order_id[:1].upper() if orders and orders[0].order_id[:1].isalpha() else ""


def months_named(text: str, now: datetime) -> set[tuple[int, int]]:
    """(year, month) pairs the text points at; a month without a year is its latest
    occurrence up to `now`."""
    out: set[tuple[int, int]] = set()
    for m in _DATE_MONTH.finditer(text):
        name = (m.group(1) or m.group(3) or m.group(4)).lower().rstrip(".")
        month = _MONTH_ABBR.get(name[:3]) if name not in _MONTH_ABBR else _MONTH_ABBR[name]
        if month is None:
            continue
        if m.group(2):
            out.add((int(m.group(2)), month))
        else:
            out.add((now.year if month <= now.month else now.year - 1, month))
    if _LAST_MONTH.search(text):
        first = now.replace(day=1) - timedelta(days=1)
        out.add((first.year, first.month))
    return out


def _in_months(o: OrderFacts, months: set[tuple[int, int]], now: datetime) -> bool:
    return (o.ordered_at.year, o.ordered_at.month) in months


def candidate(o: OrderFacts, product_id: str = "", score: float = 0.0,
              products: Mapping[str, ProductInfo] | None = None) -> Candidate:
    title = ""
    if product_id:
        title = next((i.title for i in o.items if i.product_id == product_id), "")
    elif o.items:
        title = o.items[0].title + (f" and {len(o.items) - 1} more" if len(o.items) > 1 else "")
    return Candidate(o.order_id, o.ordered_at.date().isoformat(), product_id, title,
                     round(score, 4))


def link(text: str, orders: Sequence[OrderFacts], products: Mapping[str, ProductInfo],
         now: datetime, similarity: Mapping[str, float] | None = None,
         margin: float = 0.05) -> Link:
    """Link a message to the customer's orders (newest first) and their items."""
    ids, unknown = explicit_order_ids(text, orders)
    by_id = {o.order_id: o for o in orders}
    own_products = {i.product_id for o in orders for i in o.items}
    scores = product_scores(text, {p: products[p] for p in own_products if p in products},
                            similarity)
    if ids:
        chosen = [by_id[i] for i in ids]
        first = chosen[0]
        pid = max((i.product_id for i in first.items if i.product_id in scores),
                  key=lambda p: scores[p], default="")
        if not pid and len(first.items) == 1:
            pid = first.items[0].product_id
        cands = [candidate(o, pid if o is first else "", 1.0) for o in chosen]
        return Link(first.order_id, pid, 1.0, "id", cands, unknown_ids=unknown)
    months = months_named(text, now)
    week = _LAST_WEEK.search(text) is not None
    pool = [o for o in orders if not months or _in_months(o, months, now)]
    if week:
        pool = [o for o in pool if o.ordered_at >= now - timedelta(days=7)]
    latest = _LATEST.search(text) is not None
    if scores:
        best = max(scores.values())
        good = {p for p, s in scores.items() if s >= best - margin}
        pairs = [(o, i.product_id, scores[i.product_id]) for o in pool for i in o.items
                 if i.product_id in good]
        if pairs:
            pairs.sort(key=lambda t: (-t[2], -t[0].ordered_at.timestamp()))
            if latest:  # "the last chocolate I bought": newest order holding it
                pairs = sorted(pairs, key=lambda t: -t[0].ordered_at.timestamp())[:1]
            cands = _dedupe([candidate(o, p, s) for o, p, s in pairs])
            top = cands[0]
            ambiguous = len({c.order_id for c in cands}) > 1
            conf = best if not ambiguous else best / len(cands)
            return Link(top.order_id, top.product_id, round(conf, 4), "product", cands,
                        ambiguous, unknown)
    if months or week:
        cands = [candidate(o, "", 0.8) for o in pool]
        if latest and cands:
            cands = cands[:1]
        if cands:
            one = len(cands) == 1
            only_pid = pool[0].items[0].product_id if one and len(pool[0].items) == 1 else ""
            return Link(cands[0].order_id, only_pid, 0.8 if one else round(0.8 / len(cands), 4),
                        "date", cands, not one, unknown)
    if latest and orders:
        o = orders[0]
        pid = o.items[0].product_id if len(o.items) == 1 else ""
        return Link(o.order_id, pid, 0.9, "latest", [candidate(o, pid, 0.9)],
                    unknown_ids=unknown)
    return Link(candidates=[candidate(o) for o in orders[:3]], unknown_ids=unknown)


def _dedupe(cands: list[Candidate]) -> list[Candidate]:
    seen: dict[tuple[str, str], Candidate] = {}
    for c in cands:
        seen.setdefault((c.order_id, c.product_id), c)
    return list(seen.values())


def ordinal(text: str) -> int | None:
    """1, 2, 3 for "the first/second/third one", "number 2", "2"; -1 for "the last one"."""
    m = _ORDINAL.search(text)
    if m is None:
        return None
    if m.group(4):
        return -1
    word = (m.group(1) or m.group(2) or m.group(3)).lower()
    return _ORDINALS.get(word)


def resolve_answer(text: str, candidates: Sequence[Candidate],
                   products: Mapping[str, ProductInfo], now: datetime) -> Candidate | None:
    """The listed candidate an answer picks, or None when it picks none or several."""
    if not candidates:
        return None
    n = ordinal(text)
    if n is not None and (n == -1 or 1 <= n <= len(candidates)):
        return candidates[-1] if n == -1 else candidates[n - 1]
    listed = {c.order_id for c in candidates}
    named = [c for c in candidates if re.search(
        rf"(?<![\w-]){re.escape(c.order_id)}(?![\w-])", text, re.IGNORECASE)]
    if not named:
        for m in re.finditer(r"(?<![\w.,])[A-Za-z]?0*(\d{2,8})(?![\w.,])", text):
            named += [c for c in candidates
                      if int(re.sub(r"\D", "", c.order_id) or 0) == int(m.group(1))]
    if len({c.order_id for c in named}) == 1:
        return named[0]
    words = set(content_words(text))
    if words:
        titled = [c for c in candidates if c.title and set(content_words(
            c.title + " " + _brand_and_category(c.product_id, products))) & words]
        if not titled:
            titled = [c for c in candidates if c.title and any(
                _similar(w, t) for w in words for t in content_words(c.title))]
        if len(titled) == 1:
            return titled[0]
    months = months_named(text, now)
    if months:
        dated = [c for c in candidates
                 if (int(c.ordered_at[:4]), int(c.ordered_at[5:7])) in months
                 and c.order_id in listed]
        if len(dated) == 1:
            return dated[0]
    return None


def _brand_and_category(product_id: str, products: Mapping[str, ProductInfo]) -> str:
    info = products.get(product_id)
    if info is None:
        return ""
    return f"{info.brand} {' '.join(info.category.split('/')[1:])}"
