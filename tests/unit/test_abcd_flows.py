"""The ABCD playbook as guided flows: on the real files when ../shared is present, and
on a small hand-made copy of their shape otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.conversation.flows import load_flows
from server.errors import DataError, InvalidInput
from server.knowledge.sources.abcd_flows import abcd_flows


def test_the_real_abcd_subflows_load_as_flows(shared_data: Path) -> None:
    abcd = shared_data / "abcd"
    if not (abcd / "guidelines.json").is_file():
        pytest.skip(f"ABCD guidelines not found under {abcd}")
    doc = abcd_flows(abcd)
    engine = load_flows(documents=[("abcd", doc)])  # checked like any flow file
    kb = json.loads((abcd / "kb.json").read_text())
    ids = [f["id"] for f in doc["flows"]]
    assert len(ids) == 55 == len(kb)
    for sub_key, required in kb.items():
        flow_id = engine.flow_for_intent(sub_key)
        assert flow_id is not None and flow_id.startswith("abcd.") and flow_id.endswith(sub_key)
        flow = engine.flow(flow_id)
        actions = {s.action for s in flow.steps if s.action}
        if "notify-team" in required:
            assert "handoff" in actions
        elif "offer-refund" in required or "update-order" in required:
            assert "approval" in actions
        asked = [slot for s in flow.steps for slot in s.needs]
        assert len(asked) == len(set(asked)), flow_id  # nothing is asked twice
        if "pull-up-account" in required:
            assert flow.steps[0].needs == ["customer_name"]
    # Initiate Refund walks: account, purchase, reason, details, amount -> approval.
    refund = engine.flow_for_intent("refund_initiate")
    assert refund is not None
    slots: dict[str, str] = {}
    seen = []
    while True:
        step = engine.start(refund, slots, {})
        if step.done:
            break
        seen.append(step.needs_slot)
        slots[step.needs_slot] = "x"
    assert seen == ["customer_name", "username", "email", "order_id", "reason", "details",
                    "amount"]
    assert step.action == "approval"
    # The oracle check is a branch on a fact.
    fee = engine.flow_for_intent("status_mystery_fee")
    assert fee is not None
    full = {"customer_name": "a", "account_id": "b", "order_id": "c", "zip_code": "d"}
    yes = engine.start(fee, full, {"oracle_confirms": True})
    no = engine.start(fee, full, {"oracle_confirms": False})
    assert (yes.action, no.action) == ("approval", "information")
    assert yes.facts_checked == no.facts_checked == ["oracle_confirms"]
    # The shop's own flows stay where they were.
    assert engine.flow_for_intent("damaged_item") == "damaged_item"


def _write(tmp: Path, guidelines: object, subflows: object, kb: object) -> Path:
    (tmp / "guidelines.json").write_text(json.dumps(guidelines))
    (tmp / "ontology.json").write_text(json.dumps({"intents": {"subflows": subflows}}))
    (tmp / "kb.json").write_text(json.dumps(kb))
    return tmp


def test_a_small_playbook_in_the_abcd_shape(tmp_path: Path) -> None:
    guidelines = {"Shipping Issue": {"description": "shipping", "subflows": {
        "Missing Item": {"actions": [
            {"type": "interaction", "button": "Pull up Account", "text": "Get name"},
            {"type": "kb query", "button": "Verify Identity", "text": "verify"},
            {"type": "interaction", "button": "Notify Internal Team", "text": "notify"},
        ]},
        "Shipping Cost": {"actions": [{"type": "faq/policy", "button": "Policy", "text": "p"}]},
    }}}
    kb = {"missing": ["pull-up-account", "verify-identity", "notify-team"], "cost": []}
    doc = abcd_flows(_write(tmp_path, guidelines, {"shipping_issue": ["missing", "cost"]}, kb))
    engine = load_flows(documents=[("abcd", doc)], defaults=False)
    assert engine.flow_ids == ["abcd.shipping_issue.cost", "abcd.shipping_issue.missing"]
    first = engine.start("abcd.shipping_issue.missing", {}, {})
    assert first.needs_slot == "customer_name" and "full name" in first.text
    second = engine.start("abcd.shipping_issue.missing", {"customer_name": "A"}, {})
    assert second.needs_slot == "account_id"  # the name is not asked again
    assert second.text == ("To verify your identity, could you give me your account ID, "
                           "the order ID and your zip code?")
    done = engine.start("abcd.shipping_issue.missing", {"customer_name": "A",
                        "account_id": "1", "order_id": "2", "zip_code": "3"}, {})
    assert (done.action, done.done) == ("handoff", True)
    assert engine.start("abcd.shipping_issue.cost", {}, {}).action == "information"


def test_a_playbook_that_disagrees_with_its_ontology_is_refused(tmp_path: Path) -> None:
    guidelines = {"Shipping Issue": {"subflows": {"Missing Item": {"actions": []}}}}
    with pytest.raises(DataError, match=r"1 subflows in guidelines\.json, 2 in ontology"):
        abcd_flows(_write(tmp_path, guidelines, {"shipping_issue": ["missing", "cost"]}, {}))
    with pytest.raises(DataError, match=r"kb\.json has no subflow"):
        abcd_flows(_write(tmp_path, guidelines, {"shipping_issue": ["missing"]}, {}))
    with pytest.raises(DataError, match="not found"):
        abcd_flows(tmp_path / "nowhere")


def test_the_config_picks_the_flows(tmp_path: Path) -> None:
    from server.config import load_config
    from server.conversation.flow_sources import configured_flows

    guidelines = {"Shipping Issue": {"subflows": {"Shipping Cost": {"actions": []}}}}
    abcd = _write(tmp_path, guidelines, {"shipping_issue": ["cost"]}, {"cost": []})
    shop = tmp_path / "shop.toml"
    shop.write_text('[[flows]]\nid = "praise"\nintents = ["praise"]\n[[flows.steps]]\n'
                    'id = "thanks"\ntext = "Thank you!"\naction = "information"\n')
    cfg = load_config(None, {"flows": {"paths": [str(shop)], "abcd_dir": str(abcd)}},
                      environ={})
    engine = configured_flows(cfg.flows, cfg.data, tmp_path)
    assert {"abcd.shipping_issue.cost", "praise", "damaged_item"} <= set(engine.flow_ids)
    off = load_config(None, {"flows": {"use_shared": False, "abcd_dir": str(abcd)}},
                      environ={})
    assert "abcd.shipping_issue.cost" not in configured_flows(off.flows, off.data,
                                                              tmp_path).flow_ids
    with pytest.raises(InvalidInput, match="invalid configuration"):
        load_config(None, {"flows": {"path": []}}, environ={})
