"""Field-level normalization of raw shop data: one pure function per value kind.

Each function takes a raw value as read from CSV (a string) or JSONL (a string,
number, bool, list or None) and returns the canonical value, or raises `RowError`
with a reason that ends up in the quarantine file. The rules are documented in
docs/data-schema.md; keep the two in step.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from server.knowledge.shop.schema import ORDER_STATUSES, REFUND_STATUSES

# Active ISO 4217 codes (precious-metal and fund codes left out: a shop does not
# price in gold).
_ISO_CODES = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD "
    "BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK "
    "JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA "
    "MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK "
    "PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN "
    "SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST "
    "XAF XCD XOF XPF YER ZAR ZMW ZWL "
)
ISO_CURRENCIES = frozenset(_ISO_CODES.split())
CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "CHF": "CHF"}

ORDER_STATUS_ALIASES = {
    **{s: s for s in ORDER_STATUSES},
    "pending": "processing",
    "new": "processing",
    "placed": "processing",
    "paid": "processing",
    "open": "processing",
    "in progress": "processing",
    "dispatched": "shipped",
    "in transit": "shipped",
    "sent": "shipped",
    "out for delivery": "shipped",
    "complete": "delivered",
    "completed": "delivered",
    "fulfilled": "delivered",
    "refunded": "returned",
    "canceled": "cancelled",
    "void": "cancelled",
    "voided": "cancelled",
}
REFUND_STATUS_ALIASES = {
    **{s: s for s in REFUND_STATUSES},
    "pending": "requested",
    "open": "requested",
    "accepted": "approved",
    "paid": "refunded",
    "completed": "refunded",
    "complete": "refunded",
    "denied": "rejected",
    "declined": "rejected",
}
CLAIM_STATUSES = ("", "open", "approved", "rejected")
WARRANTY_KINDS = ("manufacturer", "extended")
DOC_TYPES = ("article", "policy", "guideline", "faq")

_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200b\u3000]+")
# C0/C1 control characters except tab and newline (handled by the whitespace rules).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


class RowError(ValueError):
    """A row cannot be accepted; `str(err)` is the quarantine reason."""


def text(value: Any, *, multiline: bool = False) -> str:
    """Unescape HTML entities, drop control chars, collapse whitespace, strip.

    With `multiline`, line breaks survive (each line is collapsed and stripped, runs
    of blank lines become one) so markdown headings and paragraphs keep their shape.
    """
    if value is None:
        return ""
    s = str(value)
    if "&" in s:
        s = html.unescape(s)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _CONTROL.sub("", s)
    if not multiline:
        return _SPACES.sub(" ", s.replace("\n", " ")).strip()
    lines = [_SPACES.sub(" ", line).strip() for line in s.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def ident(value: Any, field: str) -> str:
    """An id: stripped, case preserved, non-empty, no inner whitespace runs."""
    s = "" if value is None else str(value).strip()
    if not s:
        raise RowError(f"missing {field}")
    return s


def timestamp(value: Any, field: str, *, optional: bool = False) -> datetime | None:
    """ISO 8601 (offset or not, 'T' or space, date-only) -> aware UTC. Naive means UTC."""
    s = "" if value is None else str(value).strip()
    if not s:
        if optional:
            return None
        raise RowError(f"missing {field}")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise RowError(f"bad date in {field}: {s!r}") from None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def required_timestamp(value: Any, field: str) -> datetime:
    dt = timestamp(value, field)
    assert dt is not None  # timestamp raises when not optional
    return dt


def currency(value: Any) -> str:
    """An ISO 4217 code (any case) or a symbol -> the upper-case code."""
    s = "" if value is None else str(value).strip()
    code = CURRENCY_SYMBOLS.get(s, s.upper())
    if code not in ISO_CURRENCIES:
        raise RowError(f"unknown currency {s!r}")
    return code


def money(value: Any, field: str) -> float:
    """A non-negative amount rounded to cents.

    Accepts numbers and strings with a currency symbol or code and thousands
    separators: "1,299.00", "$12.50", "12,50 EUR". When both ',' and '.' occur the
    later one is the decimal mark; a lone ',' followed by exactly two digits is a
    decimal mark, otherwise a thousands separator.
    """
    if isinstance(value, bool):
        raise RowError(f"bad amount in {field}: {value!r}")
    if isinstance(value, int | float):
        amount = float(value)
    else:
        s = "" if value is None else str(value).strip()
        if not s:
            raise RowError(f"missing {field}")
        amount = _parse_amount(s, field)
    if math.isnan(amount) or math.isinf(amount):
        raise RowError(f"bad amount in {field}: {value!r}")
    if amount < 0:
        raise RowError(f"negative {field}: {value!r}")
    return round(amount, 2)


def _parse_amount(s: str, field: str) -> float:
    try:
        return float(s)
    except ValueError:
        pass
    core = s
    for sym in ("€", "$", "£", "¥"):
        core = core.replace(sym, "")
    core = core.strip()
    # A trailing or leading 3-letter code ("12.50 EUR", "EUR 12.50").
    parts = core.split()
    if len(parts) == 2:
        core = parts[1] if parts[0].isalpha() else parts[0]
    neg = core.startswith("-")
    core = core.lstrip("+-").replace(" ", "").replace("'", "")
    if "," in core and "." in core:
        if core.rfind(",") > core.rfind("."):
            core = core.replace(".", "").replace(",", ".")
        else:
            core = core.replace(",", "")
    elif "," in core:
        head, _, tail = core.rpartition(",")
        core = f"{head.replace(',', '')}.{tail}" if len(tail) == 2 else core.replace(",", "")
    try:
        amount = float(core)
    except ValueError:
        raise RowError(f"bad amount in {field}: {s!r}") from None
    return -amount if neg else amount


def integer(value: Any, field: str, *, default: int | None = None, minimum: int = 0) -> int:
    """A whole number >= minimum ("3", "3.0", 3); empty -> default or error."""
    if isinstance(value, bool):
        raise RowError(f"bad integer in {field}: {value!r}")
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None:
            raise RowError(f"missing {field}")
        return default
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise RowError(f"bad integer in {field}: {value!r}") from None
    if not f.is_integer():
        raise RowError(f"bad integer in {field}: {value!r}")
    n = int(f)
    if n < minimum:
        raise RowError(f"{field} below {minimum}: {value!r}")
    return n


def boolean(value: Any, field: str, *, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    s = "" if value is None else str(value).strip().lower()
    if not s:
        return default
    if s in ("1", "true", "yes", "y", "t"):
        return True
    if s in ("0", "false", "no", "n", "f"):
        return False
    raise RowError(f"bad boolean in {field}: {value!r}")


def category(value: Any) -> str:
    """'electronics > phones' / 'Electronics/phones/' -> 'Electronics/Phones'.

    Separators '>', '/', '|' and '\\' all split levels; each level is cleaned and
    title-cased word by word (words that are already mixed or upper case, like 'TV'
    or 'iPhone', keep their spelling).
    """
    s = text(value)
    for sep in (">", "|", "\\"):
        s = s.replace(sep, "/")
    levels = []
    for part in s.split("/"):
        words = part.split()
        if words:
            levels.append(" ".join(w if not w.islower() else w.capitalize() for w in words))
    return "/".join(levels)


def email(value: Any) -> str:
    """Lower-cased and checked for one '@', a non-empty local part and a dotted domain."""
    s = "" if value is None else str(value).strip().lower()
    if s.startswith("mailto:"):
        s = s[7:]
    local, at, domain = s.partition("@")
    labels = domain.split(".")
    if (
        not at
        or not local
        or "@" in domain
        or len(labels) < 2
        or not all(labels)
        or len(labels[-1]) < 2
        or any(c.isspace() for c in s)
    ):
        raise RowError(f"invalid email {value!r}")
    return s


def phone(value: Any) -> str:
    """'+49 (151) 234-567' -> '+49151234567'; '0049...' -> '+49...'.

    A number without a country prefix ('+' or '00') is kept as its national digits
    without '+' (the country cannot be guessed). No digits at all -> "" (absent).
    6 to 15 digits are required, otherwise the row is quarantined.
    """
    s = "" if value is None else str(value).strip()
    digits = "".join(c for c in s if c.isdigit())
    if not digits:
        return ""
    if s.startswith("+"):
        out = "+" + digits
    elif digits.startswith("00"):
        out = "+" + digits[2:]
    else:
        out = digits
    if not 6 <= len(out.lstrip("+")) <= 15:
        raise RowError(f"invalid phone {value!r}")
    return out


def _status(value: Any, aliases: dict[str, str], what: str) -> str:
    s = _SPACES.sub(" ", str(value or "").replace("_", " ").replace("-", " ")).strip().lower()
    try:
        return aliases[s]
    except KeyError:
        raise RowError(f"unknown {what} {value!r}") from None


def order_status(value: Any) -> str:
    return _status(value, ORDER_STATUS_ALIASES, "order status")


def refund_status(value: Any) -> str:
    return _status(value, REFUND_STATUS_ALIASES, "refund status")


def choice(value: Any, allowed: tuple[str, ...], field: str, *, default: str) -> str:
    s = str(value or "").strip().lower()
    if not s:
        return default
    if s not in allowed:
        raise RowError(f"unknown {field} {value!r}")
    return s


def str_list(value: Any) -> tuple[str, ...]:
    """A CSV '|'-separated string or a JSON list -> stripped, non-empty, de-duplicated."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split("|")
    seen: dict[str, None] = {}
    for item in items:
        s = str(item).strip()
        if s:
            seen.setdefault(s, None)
    return tuple(seen)


def match_key(value: str) -> str:
    """A loose comparison key: NFKD-folded, lower case, punctuation collapsed."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub(" ", folded.lower()).strip()


def sku_key(value: str) -> str:
    """SKUs compare on letters and digits only, upper case: 'phn-0001 ' == 'PHN0001'."""
    return _NON_ALNUM.sub("", value.lower()).upper()
