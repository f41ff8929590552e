"""Adapters that turn the shared public datasets into help-center `Article` records.

- ABCD agent guidelines (MIT): each of the 55 subflows of guidelines.json becomes
  one "guideline" article with the agent's steps and the policy text it must apply.
- Bitext customer-support responses (CDLA-Sharing-1.0): the first distinct
  responses per intent become "faq" articles titled from the intent.

The data is read from its shared location (never copied into the repository); see
`shared_data_dir`. Placeholder handling for Bitext is documented in
docs/data-schema.md.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

import msgspec

from server.errors import DataError
from server.knowledge.shop.normalize import text
from server.knowledge.shop.schema import Article

SHARED_ENV = "AFTERCARE_SHARED_DATA"
ABCD_GUIDELINES = "abcd/guidelines.json"
BITEXT_CSV = "bitext-customer-support/customer-support.csv"

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_SLUG = re.compile(r"[^a-z0-9]+")
# Placeholders that stand for a value the shop would fill in; everything else in
# {{...}} is a UI label ("{{Order History}}") and reads fine without the braces.
_VALUES = {
    "website name": "our website",
    "website url": "our website",
    "website": "our website",
    "website or app": "our website or app",
    "company name": "our shop",
    "customer support phone number": "our customer support phone line",
    "customer service phone number": "our customer support phone line",
    "support phone number": "our customer support phone line",
    "customer support email": "our support email address",
    "customer support email address": "our support email address",
    "customer support availability": "during our opening hours",
    "customer support hours": "during our opening hours",
    "customer service hours": "during our opening hours",
    "live chat": "live chat",
    "number of days": "a few days",
}


def shared_data_dir(repo_root: Path | None = None) -> Path:
    """$AFTERCARE_SHARED_DATA, else ../shared/data beside the repository root."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env)
    root = repo_root or Path(__file__).resolve().parents[3]
    return root.parent / "shared" / "data"


def _slug(value: str) -> str:
    return _SLUG.sub("-", value.lower()).strip("-")


def abcd_guidelines(path: Path) -> list[Article]:
    """Articles (doc_type "guideline") from ABCD guidelines.json, one per subflow.

    `path` is the JSON file or the directory that holds it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "guidelines.json"
    if not path.is_file():
        raise DataError(f"ABCD guidelines not found: {path}")
    try:
        flows = msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as exc:
        raise DataError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(flows, dict):
        raise DataError(f"{path.name}: expected an object of flows")
    out: list[Article] = []
    for flow, spec in flows.items():
        for subflow, sub in (spec.get("subflows") or {}).items():
            body = _guideline_body(str(spec.get("description", "")), sub)
            out.append(
                Article(
                    article_id=f"abcd-{_slug(flow)}-{_slug(subflow)}",
                    title=f"{flow}: {subflow}",
                    body=body,
                    tags=("abcd", _slug(flow), _slug(subflow)),
                    doc_type="guideline",
                )
            )
    return out


def _guideline_body(description: str, sub: dict[str, Any]) -> str:
    instructions = [text(i) for i in sub.get("instructions", []) if text(i)]
    steps: list[str] = []
    policy: list[str] = []
    for n, action in enumerate(sub.get("actions", []), start=1):
        line = text(action.get("text"))
        subtext = [text(s) for s in action.get("subtext", []) if text(s)]
        if action.get("type") == "faq/policy":
            policy.append(line)
            policy.extend(f"- {s}" for s in subtext)
            steps.append(f"{n}. {line} (see Policy below)")
            continue
        steps.append(f"{n}. {line}")
        steps.extend(f"- {s}" for s in subtext)
    parts = []
    intro = [f"Flow: {text(description)}."] if description else []
    if instructions:
        intro.append(instructions[0])
    if intro:
        parts.append(" ".join(intro))
    parts.append("## Steps\n" + "\n".join(steps))
    if policy:
        parts.append("## Policy\n" + "\n".join(policy))
    if len(instructions) > 1:
        parts.append("## Notes\n" + "\n".join(instructions[1:]))
    return text("\n\n".join(parts), multiline=True)


def clean_placeholders(value: str) -> str:
    """Replace Bitext {{...}} placeholders: values get a generic phrase, labels lose braces."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        key = name.lower()
        if key in _VALUES:
            phrase = _VALUES[key]
            before = m.string[max(0, m.start() - 4) : m.start()].lower()
            # "log into our {{Website Name}}" must not become "our our website".
            if phrase.startswith("our ") and before.endswith(("our ", "the ")):
                phrase = phrase[4:]
            return phrase
        if "anonymized" in key:  # {{Order Number Anonymized}} -> "your order number"
            return "your " + key.replace("anonymized", "").strip()
        return name

    return _PLACEHOLDER.sub(sub, value)


def bitext_responses(
    csv_path: Path, limit_per_intent: int = 5, *, keep_placeholders: bool = False
) -> list[Article]:
    """Articles (doc_type "faq") from Bitext `response` texts, first distinct ones per intent."""
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / "customer-support.csv"
    if not csv_path.is_file():
        raise DataError(f"Bitext CSV not found: {csv_path}")
    if limit_per_intent < 1:
        raise DataError("limit_per_intent must be at least 1")
    taken: dict[str, list[str]] = {}
    category: dict[str, str] = {}
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"intent", "response", "category"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{csv_path.name}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            intent = (row["intent"] or "").strip()
            raw = row["response"] or ""
            body = text(raw if keep_placeholders else clean_placeholders(raw), multiline=True)
            bucket = taken.setdefault(intent, [])
            if intent and body and len(bucket) < limit_per_intent and body not in bucket:
                bucket.append(body)
                category.setdefault(intent, (row["category"] or "").strip().lower())
    out: list[Article] = []
    for intent, bodies in taken.items():
        title = intent.replace("_", " ").strip().capitalize()
        for k, body in enumerate(bodies, start=1):
            tags = tuple(t for t in ("bitext", intent, category.get(intent, "")) if t)
            out.append(
                Article(
                    article_id=f"bitext-{_slug(intent)}-{k}",
                    title=title,
                    body=body,
                    tags=tags,
                    doc_type="faq",
                )
            )
    return out
