"""PII detection and redaction for customer messages and model output.

Kinds and what is detected (validated where a checksum exists):
- EMAIL: local@domain.tld.
- PHONE: international (+CC or 00CC, validated with `phonenumbers`) and national
  formats of US/CA, GB, FR, DE, NL, ES, IT, BE, AT, CH, IE. Bare digit strings with no
  separators count only after a phone word ("call", "mobile", ...) so that numeric
  order ids are not taken for phones.
- CARD: 13-19 digits, spaces/dashes allowed, Luhn-valid, issuer digit 2-6.
- IBAN: country code + check digits, the country's exact length, mod-97 valid.
- ADDRESS: "12 Baker Street", "221B Baker St.", "12 rue de Rivoli",
  "Hauptstraße 5", "Berliner Str. 12", "Calle Mayor 7", "Keizersgracht 123".
- GOV_ID: US SSN as ddd-dd-dddd with valid ranges (bare 9 digits only after
  "SSN"/"social security"), UK NINO (valid prefixes), Spanish DNI/NIE (check letter).

Look-alikes that survive: order ids (A10023, #458812), SKUs, prices, dates, times,
tracking numbers, and any value the caller allows (the customer's own ids).
A `Redaction` keeps only the redacted text and typed spans, never a raw value.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import msgspec
import phonenumbers

KINDS = ("EMAIL", "PHONE", "CARD", "IBAN", "ADDRESS", "GOV_ID")
PHONE_REGIONS = ("US", "GB", "FR", "DE", "NL", "ES", "IT", "BE", "AT", "CH", "IE")
# Exact IBAN lengths per country (ISO 13616 registry, the common SEPA ones).
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27,
    "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27,
}  # fmt: skip
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_PHONE_CONTEXT = re.compile(
    r"(?:phone|call|tel\b|telephone|mobile|cell|whats ?app|text me|ring me|reach me|"
    r"landline|fax|my number|contact number)",
    re.IGNORECASE,
)
_SSN_CONTEXT = re.compile(r"(?:ssn|social security)", re.IGNORECASE)
_EN_SUFFIX = (
    r"(?:Street|Road|Avenue|Lane|Drive|Boulevard|Way|Court|Place|Close|Crescent|Terrace|"
    r"Square|Parkway|Highway|Gardens|Grove|Mews|Row|Loop)\b|(?:St|Rd|Ave|Ln|Dr|Blvd|Ct|Pl|Sq)\b\.?"
)
_DE_SUFFIX = (
    r"(?:straße|strasse|str\.|weg|platz|allee|gasse|ring|damm|ufer|graben|markt"
    r"|straat|laan|gracht|plein|kade)"
)
_CAP = r"[A-ZÄÖÜÉ][a-zäöüßéèà'’\-]{1,19}"


class PiiSpan(msgspec.Struct, frozen=True):
    kind: str  # one of KINDS
    start: int  # offsets in the original text
    end: int


class Redaction(msgspec.Struct, frozen=True):
    text: str  # the input with each span replaced by "[KIND]"
    spans: list[PiiSpan]

    @property
    def kinds(self) -> list[str]:
        return sorted({s.kind for s in self.spans})


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    """mod-97 check of an IBAN without spaces (upper case)."""
    if len(compact) != IBAN_LENGTHS.get(compact[:2], -1) or not compact[2:4].isdigit():
        return False
    moved = compact[4:] + compact[:4]
    as_int = "".join(str(int(c, 36)) for c in moved)
    return int(as_int) % 97 == 1


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


class PiiDetector:
    """Finds PII spans; holds its compiled patterns (build one, reuse it)."""

    # Longest match of any pattern that may contain whitespace (addresses, IBANs,
    # NINOs); the stream guard holds back at least this much.  Emails and digit
    # runs are unbounded but never cross whitespace / are sticky in the guard.
    max_bounded_span = 96

    def __init__(self, phone_regions: Collection[str] = PHONE_REGIONS) -> None:
        self._regions = tuple(phone_regions)
        self._email = re.compile(
            r"(?<![\w.+\-])[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,63})@"
            r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w\-])"
        )
        self._iban_start = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})(?=[ ]?[A-Za-z0-9])")
        chunk = r"\+?\(?\d+\)?"
        self._run = re.compile(rf"(?<![\w+/.,\-]){chunk}(?:(?:[ \-./]|\s-\s)?{chunk})*")
        self._ssn = re.compile(r"^(\d{3})-(\d{2})-(\d{4})$")
        self._nino = re.compile(
            r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
            r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
        )
        self._dni = re.compile(r"(?<![\w\-])(?:(\d{8})|([XYZ])-?(\d{7}))-?([A-Z])(?![\w\-])")
        self._address = re.compile(
            rf"(?<![\w\-/#])\d{{1,5}}[A-Za-z]?,?\s(?:{_CAP}\s){{1,3}}(?:{_EN_SUFFIX})"
            rf"|(?<![\w\-/#])\d{{1,4}}(?:\s?(?:bis|ter))?,?\s(?:rue|avenue|boulevard|place|allée|"
            rf"chemin|quai|impasse)\s(?:(?:de|du|des|la|le)\s|[ld][’']){{0,2}}{_CAP}(?:\s{_CAP}){{0,2}}"
            rf"|\b(?:{_CAP}[ \-])?[A-ZÄÖÜ][a-zäöüß]{{1,20}}{_DE_SUFFIX}\s?\d{{1,4}}[a-z]?(?![\w])"
            rf"|\b{_CAP}\s(?:Straße|Strasse|Str\.|Weg|Platz|Allee|Gasse)\s\d{{1,4}}[a-z]?(?![\w])"
            rf"|\b(?:Calle|Avenida|Plaza|Paseo|Via|Viale|Piazza|Corso)\s"
            rf"(?:(?:de|del|la|di|della)\s){{0,2}}{_CAP}(?:\s{_CAP}){{0,2}},?\s\d{{1,4}}[a-z]?(?![\w])"
        )
        # Look-alikes whose digits must never be read as phones, cards or ids.
        self._lookalike = re.compile(
            r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"
            r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"
            r"|(?:[€$£¥]|\b(?:EUR|USD|GBP|CHF)\b)\s?\d[\d,.]*(?:\s\d{3}(?:[,.]\d{2})?)?"
            r"|\d[\d,.]*(?:\s\d{3}(?:[,.]\d{2})?)?\s?(?:€|\$|£|\b(?:EUR|USD|GBP|CHF|euros?|dollars?|pounds?)\b)"
        )

    # -- public API --------------------------------------------------------------------

    def detect(self, text: str, allow: Collection[str] = ()) -> list[PiiSpan]:
        """Non-overlapping PII spans sorted by start; allowed values are skipped."""
        protected = self._protected(text, allow)
        ibans, bad_ibans = self._ibans(text)
        protected += bad_ibans  # a mistyped IBAN holds no card or phone
        taken: list[tuple[int, int]] = []
        found: list[PiiSpan] = []

        def add(kind: str, start: int, end: int) -> None:
            if any(s < end and start < e for s, e in taken):
                return
            if text[start:end] in allow:
                return
            taken.append((start, end))
            found.append(PiiSpan(kind, start, end))

        for m in self._email.finditer(text):
            add("EMAIL", m.start(), m.end())
        for start, end in ibans:
            add("IBAN", start, end)
        for m in self._nino.finditer(text):
            add("GOV_ID", m.start(), m.end())
        for m in self._dni.finditer(text):
            if self._dni_ok(m) and not _overlaps(m.start(), m.end(), protected):
                add("GOV_ID", m.start(), m.end())
        for m in self._address.finditer(text):
            add("ADDRESS", m.start(), m.end())
        for start, end in self.digit_runs(text):
            if _overlaps(start, end, protected):
                continue
            hit = self._classify_run(text, start, end)
            if hit is not None:
                add(*hit)
        found.sort(key=lambda s: s.start)
        return found

    def redact(self, text: str, allow: Collection[str] = ()) -> Redaction:
        spans = self.detect(text, allow)
        return Redaction(text=apply_placeholders(text, spans), spans=spans)

    def digit_runs(self, text: str) -> list[tuple[int, int]]:
        """Maximal digit groups joined by single separators (phones, cards, ids)."""
        runs = []
        for m in self._run.finditer(text):
            start, end = m.start(), m.end()
            # A closing ")" with no opening one belongs to the sentence, not the number.
            if text[end - 1] == ")" and "(" not in text[start:end]:
                end -= 1
            runs.append((start, end))
        return runs

    # -- internals ---------------------------------------------------------------------

    def _protected(self, text: str, allow: Collection[str]) -> list[tuple[int, int]]:
        spans = [(m.start(), m.end()) for m in self._lookalike.finditer(text)]
        for value in allow:
            if len(value) < 4:
                continue
            i = text.find(value)
            while i >= 0:
                spans.append((i, i + len(value)))
                i = text.find(value, i + 1)
        return spans

    def _ibans(self, text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(valid IBANs, IBAN-shaped candidates that fail the checks)."""
        out, bad = [], []
        for m in self._iban_start.finditer(text):
            country = m.group(1).upper()
            length = IBAN_LENGTHS.get(country)
            if length is None:
                continue
            # Walk exactly `length` alphanumerics, allowing single spaces between them.
            chars: list[str] = []
            i = m.start()
            while i < len(text) and len(chars) < length:
                ch = text[i]
                if ch.isascii() and ch.isalnum():
                    chars.append(ch.upper())
                elif not (ch == " " and chars and i + 1 < len(text) and text[i + 1] != " "):
                    break
                i += 1
            complete = len(chars) == length and not (i < len(text) and text[i].isalnum())
            if complete and iban_ok("".join(chars)):
                out.append((m.start(), i))
                continue
            bad.append((m.start(), i))
        return out, bad

    @staticmethod
    def _dni_ok(m: re.Match[str]) -> bool:
        number = m.group(1) or str("XYZ".index(m.group(2))) + m.group(3)
        return _DNI_LETTERS[int(number) % 23] == m.group(4)

    def _classify_run(self, text: str, start: int, end: int) -> tuple[str, int, int] | None:
        raw = text[start:end]
        digits = "".join(c for c in raw if c.isdigit())
        n = len(digits)
        has_sep = len(digits) != len(raw)
        ssn = self._ssn.match(raw)
        if ssn:
            # SSN-shaped but never issued: not a phone or card either.
            return ("GOV_ID", start, end) if _ssn_ok(*ssn.groups()) else None
        bare_ssn = n == 9 and not has_sep and _ssn_ok(digits[:3], digits[3:5], digits[5:])
        if bare_ssn and _SSN_CONTEXT.search(text, max(0, start - 40), start):
            return ("GOV_ID", start, end)
        if (
            13 <= n <= 19
            and raw[0].isdigit()
            and set(raw) <= set("0123456789 -")
            and digits[0] in "23456"
            and luhn_ok(digits)
        ):
            return ("CARD", start, end)
        if self._is_phone(text, start, end):
            return ("PHONE", start, end)
        # A short trailing group may belong to the sentence: "call 020 7946 0958 2 times".
        j = raw.rfind(" ")
        if j > 0 and len(raw) - j - 1 <= 2 and self._is_phone(text, start, start + j):
            return ("PHONE", start, start + j)
        return None

    def _is_phone(self, text: str, start: int, end: int) -> bool:
        raw = text[start:end]
        digits = "".join(c for c in raw if c.isdigit())
        if not 7 <= len(digits) <= 15:
            return False
        if raw.startswith("+") or raw.startswith("00"):
            intl = "+" + (digits[2:] if raw.startswith("00") else digits)
            try:
                num = phonenumbers.parse(intl, None)
            except phonenumbers.NumberParseException:
                return False
            return phonenumbers.is_possible_number(num)
        has_sep = len(digits) != len(raw)
        if not has_sep and not _PHONE_CONTEXT.search(text, max(0, start - 40), start):
            return False
        for region in self._regions:
            try:
                num = phonenumbers.parse(raw, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(num):
                return True
            # Fictional/reserved ranges ((555) 123-4567, 07700 900123) are still phones
            # to a reader; accept a possible number when it is written with separators.
            if has_sep and region in ("US", "GB") and phonenumbers.is_possible_number(num):
                return True
        return False


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in spans)


def apply_placeholders(text: str, spans: list[PiiSpan]) -> str:
    """Replace each span (sorted, non-overlapping) by "[KIND]"."""
    parts, pos = [], 0
    for s in spans:
        parts.append(text[pos : s.start])
        parts.append(f"[{s.kind}]")
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


def redact(
    text: str, allow: Collection[str] = (), *, detector: PiiDetector | None = None
) -> Redaction:
    """Convenience for one-off calls; hot paths keep one PiiDetector and call .redact."""
    return (detector or PiiDetector()).redact(text, allow)
