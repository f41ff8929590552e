"""The ABCD agent playbook (MIT) as guided flows in the project's flow format.

guidelines.json holds 10 flows with 55 subflows, each a list of agent actions;
ontology.json names the subflows (`refund_initiate`, ...) in the same order and the
slots each action takes; kb.json lists the actions each subflow requires. One subflow
becomes one flow (docs/flows.md):

- steps: the actions that need something from the customer (pull up the account,
  verify identity, validate the purchase, record the reason, ...) in guideline order,
  each asking for the slots it adds; a slot asked once is not asked again;
- "Ask the Oracle" (the system check of the customer's claim) becomes a branch on the
  fact `oracle_confirms`: confirmed goes on, anything else ends with information;
- the end: "handoff" when the subflow notifies an internal team, "approval" when it
  changes an order, an account, a refund or a promo code, else "information".

The result is a decoded document (`{"flows": [...]}`) that `load_flows` checks like any
flow file, so the ABCD flows and the shop's own go through the same loader.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import msgspec

from server.errors import DataError

# Action (ontology name) -> the slots it asks the customer for, and how it asks.
_ASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pull-up-account": ("To pull up your account", ("customer_name",)),
    "verify-identity": ("To verify your identity",
                        ("customer_name", "account_id", "order_id", "zip_code")),
    "validate-purchase": ("To validate the purchase", ("username", "email", "order_id")),
    "record-reason": ("So that I note it correctly", ("reason",)),
    "enter-details": ("To complete this", ("details",)),
    "shipping-status": ("To check the shipment", ("shipping_option",)),
    "make-purchase": ("To place the order", ("product",)),
    "offer-refund": ("For the refund", ("amount",)),
}
_PHRASES = {
    "customer_name": "your full name", "account_id": "your account ID",
    "order_id": "the order ID", "zip_code": "your zip code", "username": "your username",
    "email": "the email address on your account", "reason": "the reason",
    "details": "the details (your address or account ID)",
    "shipping_option": "the shipping option you chose",
    "product": "the brand and type of the product", "amount": "the amount",
}
_APPROVAL = {"offer-refund", "update-order", "update-account", "promo-code", "make-purchase",
             "make-password"}
_HANDOFF = {"notify-team"}
_ORACLE = "ask-the-oracle"
_BUTTONS = {  # guideline button labels that do not slug to their ontology action
    "enter detail": "enter-details", "notify internal team": "notify-team",
    "select answer": "select-faq", "membership privileges": "membership",
}
_SLUG = re.compile(r"[^a-z0-9]+")


def _key(label: str) -> str:
    return _SLUG.sub("_", label.lower()).strip("_")


def _action(button: str) -> str:
    b = button.strip().lower()
    return _BUTTONS.get(b, _SLUG.sub("-", b).strip("-"))


def _read(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"ABCD file not found: {path}")
    try:
        return msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as exc:
        raise DataError(f"{path.name} is not valid JSON: {exc}") from None


def _ask_text(lead: str, slots: list[str]) -> str:
    phrases = [_PHRASES[s] for s in slots]
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + \
        phrases[-1]
    return f"{lead}, could you give me {listed}?"


def _end(kb_actions: list[str], asked: bool) -> dict[str, Any]:
    if _HANDOFF & set(kb_actions):
        return {"id": "end", "action": "handoff",
                "text": "Thank you. I am passing this to the team that handles it."}
    if _APPROVAL & set(kb_actions):
        return {"id": "end", "action": "approval",
                "text": "Thank you, I have what I need. An agent confirms the next step "
                        "shortly."}
    return {"id": "end", "action": "information",
            "text": "Thank you, that is all I need; here is what our help center says."
            if asked else "Here is what our help center says about it."}


def _flow(flow_key: str, sub_key: str, title: str, spec: dict[str, Any],
          kb_actions: list[str]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    asked: set[str] = set()
    order = [_action(str(a.get("button", ""))) for a in spec.get("actions", [])]
    # An action the kb requires but the guideline text never names still happens.
    order += [a for a in kb_actions if a not in order]
    for name in order:
        if name == _ORACLE and not any(s["id"] == _ORACLE for s in steps):
            steps.append({"id": _ORACLE, "branches": [
                {"fact": "oracle_confirms", "in": [True], "next": "?"}, {"next": "unconfirmed"}]})
            continue
        if name not in _ASKS:
            continue
        lead, slots = _ASKS[name]
        new = [s for s in slots if s not in asked]
        if not new:
            continue
        asked.update(new)
        ident = name if all(s["id"] != name for s in steps) else f"{name}-{len(steps)}"
        steps.append({"id": ident, "text": _ask_text(lead, new), "needs": new, "next": "?"})
    end = _end(kb_actions, bool(asked))
    steps.append(end)
    if any(s["id"] == _ORACLE for s in steps):
        steps.append({"id": "unconfirmed", "action": "information",
                      "text": "I checked our system and it does not show this, so there is "
                              "nothing to change on our side."})
    for here, there in itertools.pairwise(steps):  # chain the steps in order
        if here.get("next") == "?":
            here["next"] = there["id"]
        for b in here.get("branches", []):
            if b["next"] == "?":
                b["next"] = there["id"]
    return {"id": f"abcd.{flow_key}.{sub_key}", "title": title, "intents": [sub_key],
            "source": "abcd", "steps": steps}


def abcd_flows(abcd_dir: Path) -> dict[str, Any]:
    """A flow document with one flow per ABCD subflow (read from `abcd_dir`)."""
    abcd_dir = Path(abcd_dir)
    guidelines = _read(abcd_dir / "guidelines.json")
    ontology = _read(abcd_dir / "ontology.json")
    kb = _read(abcd_dir / "kb.json")
    try:
        names: dict[str, list[str]] = ontology["intents"]["subflows"]
    except (KeyError, TypeError):
        raise DataError("ontology.json: no intents.subflows") from None
    flows = []
    for flow_label, flow_spec in guidelines.items():
        flow_key = _key(flow_label)
        subflows = list((flow_spec.get("subflows") or {}).items())
        keys = names.get(flow_key, [])
        if len(keys) != len(subflows):
            raise DataError(f"ABCD flow {flow_label!r}: {len(subflows)} subflows in "
                            f"guidelines.json, {len(keys)} in ontology.json")
        for sub_key, (sub_label, sub_spec) in zip(keys, subflows, strict=True):
            if sub_key not in kb:
                raise DataError(f"kb.json has no subflow {sub_key!r}")
            flows.append(_flow(flow_key, sub_key, f"{flow_label}: {sub_label}", sub_spec,
                               list(kb[sub_key])))
    return {"format": 1, "flows": flows}
