"""Metrics over HTTP after real calls, the span tree of one Respond, drift, and the
trace id in the decision record, on a real server over real channels."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from tests.functional.harness import ServerThread
from tests.functional.observe_harness import http_get, observed_server, sample, scrape, total

SUPPORT = "aftercare.v1.Support"


class Env:
    def __init__(self, srv: ServerThread, spans) -> None:
        self.srv = srv
        self.spans = spans
        assert srv.app is not None
        self.metrics_port = srv.app.metrics_port
        self.channel = grpc.insecure_channel(srv.address)
        self.support = support_pb2_grpc.SupportStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def respond(self, text: str, customer_id: str = "") -> support_pb2.Final:
        final = None
        for ev in self.support.Respond(support_pb2.RespondRequest(
                text=text, customer_id=customer_id), timeout=60):
            if ev.HasField("final"):
                final = ev.final
        assert final is not None
        return final


@pytest.fixture(scope="module")
def env(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("observe")
    srv, spans = observed_server(
        {**server_overrides, "records": {"path": str(base / "records.sqlite")},
         "drift": {"window": 64, "min_samples": 5, "evaluate_every": 4}})
    e = Env(srv, spans)
    yield e
    e.channel.close()
    srv.stop()


def test_counters_move_by_the_calls_made(env: Env) -> None:
    before = scrape(env.metrics_port)
    for text in ("where is my parcel", "I want a refund", "how do I reset my password"):
        env.support.Classify(support_pb2.ClassifyRequest(text=text), timeout=30)
    with pytest.raises(grpc.RpcError) as err:
        env.support.Classify(support_pb2.ClassifyRequest(text="  "), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    final = env.respond("I want to speak to a real person please")
    assert final.route == "human"
    after = scrape(env.metrics_port)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("aftercare_rpc_requests_total", service=SUPPORT, method="Classify",
                 code="OK") == 3
    assert delta("aftercare_rpc_requests_total", service=SUPPORT, method="Classify",
                 code="INVALID_ARGUMENT") == 1
    assert delta("aftercare_rpc_requests_total", service=SUPPORT, method="Respond",
                 code="OK") == 1
    assert delta("aftercare_rpc_duration_seconds_count", service=SUPPORT,
                 method="Classify") == 4
    # 3 Classify + the one in Respond; the empty text never reached the model.
    assert (total(after, "aftercare_inference_requests_total", model="intent-classifier",
                  traffic="live")
            - total(before, "aftercare_inference_requests_total", model="intent-classifier",
                    traffic="live")) == 4
    assert delta("aftercare_queue_duration_seconds_count", model="intent-classifier") == 4
    assert (total(after, "aftercare_batch_size_sum", model="intent-classifier")
            - total(before, "aftercare_batch_size_sum", model="intent-classifier")) == 4
    assert delta("aftercare_decisions_total", route="human", outcome="handed_off",
                 channel="chat") == 1
    reason = next(a.detail for a in final.actions if a.kind == "handoff")
    assert delta("aftercare_handoffs_total", reason=reason) == 1
    for stage in ("redact", "classify", "link", "route", "compose", "guard"):
        assert delta("aftercare_respond_stage_duration_seconds_count", stage=stage) == 1, stage
    assert delta("aftercare_respond_ttft_seconds_count", channel="chat") == 1
    # Gauges read at scrape time.
    assert total(after, "aftercare_model_info", model="intent-classifier", version="1") == 1
    assert total(after, "aftercare_model_info", model="minilm-embedder") == 1
    assert ("aftercare_queue_depth", (("model", "intent-classifier"),)) in after
    assert ("aftercare_record_queue_depth", ()) in after
    snap = [ls for (n, ls), v in after.items() if n == "aftercare_snapshot_info" and v == 1]
    assert len(snap) == 1 and dict(snap[0])["snapshot_id"].startswith("snap-")


def test_one_respond_yields_the_span_tree(env: Env) -> None:
    env.spans.clear()
    final = env.respond("where is my order?")
    assert final.route == "automated"
    finished = env.spans.get_finished_spans()
    server = [s for s in finished if s.name == f"/{SUPPORT}/Respond"]
    assert len(server) == 1
    root = server[0]
    children = {s.name: s for s in finished
                if s.parent is not None and s.parent.span_id == root.context.span_id}
    assert {"redact", "classify", "link", "route", "retrieve", "compose", "guard"} <= set(
        children)
    for s in children.values():
        assert s.context.trace_id == root.context.trace_id
        assert root.start_time <= s.start_time <= s.end_time <= root.end_time + 1_000_000
    order = sorted(("redact", "classify", "link", "route", "retrieve", "compose"),
                   key=lambda n: children[n].start_time)
    assert order == ["redact", "classify", "link", "route", "retrieve", "compose"]
    # The classifier batch the request rode in is its own span, linked to the request.
    batches = [s for s in finished if s.name == "batch"
               and any(link.context.span_id == root.context.span_id for link in s.links)]
    assert batches and batches[0].attributes["aftercare.model"] == "intent-classifier"
    rec = env.admin.GetDecision(admin_pb2.GetDecisionRequest(decision_id=final.decision_id))
    assert rec.trace_id == format(root.context.trace_id, "032x")


def test_drift_report_for_live_traffic(env: Env) -> None:
    for i in range(6):
        env.support.Classify(support_pb2.ClassifyRequest(text=f"where is my order {i}"),
                             timeout=30)
    report = env.admin.GetDrift(admin_pb2.GetDriftRequest())
    model = next(m for m in report.models if m.model == "intent-classifier")
    assert model.version == 1 and model.window == 64 and model.samples >= 6
    figures = {f.name: f for f in model.figures}
    assert set(figures) == {"intent_psi", "mean_top_probability", "oos_rate",
                            "centroid_cosine"}
    psi = figures["intent_psi"]
    # Nearly all traffic is order_status against a uniform training mix: major drift.
    assert psi.available and psi.live > psi.threshold and psi.alert and model.alert
    assert model.live_intent_mix["order_status"] >= 0.5
    assert abs(sum(model.reference_intent_mix.values()) - 1.0) < 1e-6
    assert figures["oos_rate"].available  # from the manifest's calibration quantile
    scraped = scrape(env.metrics_port)
    assert sample(scraped, "aftercare_drift_alert", model="intent-classifier", version="1",
                  metric="intent_psi") == 1
    assert env.srv.app is not None and any(
        e.figure == "intent_psi" for e in env.srv.app.observe.drift.events)
    status, _, body = http_get(env.metrics_port, "/api/drift")
    assert status == 200 and json.loads(body)["models"][0]["model"] == "intent-classifier"
    # The alert is a lifecycle event of the model, stored with the others.
    deadline = time.monotonic() + 10
    while True:
        events = env.admin.GetTrafficReport(admin_pb2.GetTrafficReportRequest(
            name="intent-classifier"), timeout=30).events
        alerts = [e for e in events if e.kind == "drift_alert"]
        if alerts or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert alerts and "intent_psi" in alerts[0].detail and alerts[0].actor == "drift-monitor"


def test_dashboard_and_unknown_paths(env: Env) -> None:
    status, ctype, body = http_get(env.metrics_port, "/dashboard")
    assert status == 200 and ctype.startswith("text/html")
    assert b"<script" in body and b"http://" not in body.replace(b"http://www.w3.org", b"")
    status, _, body = http_get(env.metrics_port, "/api/traffic")
    traffic = json.loads(body)
    assert any(r["method"] == "Classify" and r["count"] >= 1 for r in traffic["rpcs"])
    with pytest.raises(Exception, match="404"):
        http_get(env.metrics_port, "/nope")
    with pytest.raises(Exception, match="400"):
        http_get(env.metrics_port, "/api/kpis?since=yesterday")
