"""deploy/grafana/aftercare.json queries only metrics the server exports, and the
exported names are the contract of the README."""

from __future__ import annotations

import json
import re

from server.observability.metrics import LiveModel, LiveSources, Metrics
from tests.conftest import ROOT

CONTRACT = {
    "aftercare_rpc_requests_total", "aftercare_rpc_duration_seconds",
    "aftercare_inference_requests_total", "aftercare_inference_duration_seconds",
    "aftercare_queue_duration_seconds", "aftercare_batch_size", "aftercare_queue_depth",
    "aftercare_rejected_total", "aftercare_respond_stage_duration_seconds",
    "aftercare_respond_ttft_seconds", "aftercare_handoffs_total",
    "aftercare_policy_violations_total", "aftercare_decisions_total",
    "aftercare_record_queue_depth", "aftercare_model_info", "aftercare_snapshot_info",
    "aftercare_shadow_agreement",
}


def exported() -> set[str]:
    m = Metrics(LiveSources(models=lambda: [LiveModel("clf", "1", ["CPU"], 0)],
                            snapshot=lambda: ("snap-1", "idx-1")))
    names = set()
    for family in m.registry.collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        if family.type == "histogram":  # labelled: no samples until observed
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        names |= {s.name for s in family.samples}
    return names


def test_the_contract_is_exported() -> None:
    assert exported() >= CONTRACT


def test_grafana_queries_known_metrics() -> None:
    dash = json.loads((ROOT / "deploy" / "grafana" / "aftercare.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\baftercare_[a-z_]+", e)}
    names = exported()
    assert used and used <= names, used - names
    # Every contract metric has a panel (the histograms through their buckets).
    bases = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert bases >= CONTRACT, CONTRACT - bases
