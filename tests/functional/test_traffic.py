"""Shadow and canary traffic on the real server with a deliberately bad candidate
(v3: labels permuted, so it never agrees with v1): no answer comes from a shadow,
agreement is reported, auto-rollback fires after min_requests, canary answers stop."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from tests.functional.harness import ServerThread
from tests.functional.lifecycle_repo import CLASSIFIER, SHUFFLED

TEXTS = ["where is my order", "I want a refund", "cancel my order please",
         "my card was declined", "talk to a human", "change my delivery address"]


@pytest.fixture()
def stubs(lifecycle_server: ServerThread
          ) -> Iterator[tuple[admin_pb2_grpc.AdminStub, support_pb2_grpc.SupportStub]]:
    with grpc.insecure_channel(lifecycle_server.address) as ch:
        admin = admin_pb2_grpc.AdminStub(ch)
        admin.ActivateModel(admin_pb2.ActivateModelRequest(name=CLASSIFIER, version=1),
                            timeout=60)
        admin.LoadModel(admin_pb2.LoadModelRequest(name=CLASSIFIER, version=SHUFFLED),
                        timeout=60)
        yield admin, support_pb2_grpc.SupportStub(ch)
        admin.SetTrafficPolicy(admin_pb2.TrafficPolicy(name=CLASSIFIER), timeout=10)


def _report(admin: admin_pb2_grpc.AdminStub) -> admin_pb2.TrafficReport:
    return admin.GetTrafficReport(admin_pb2.GetTrafficReportRequest(name=CLASSIFIER), timeout=10)


def _classify(support: support_pb2_grpc.SupportStub, i: int, key: str = "") -> str:
    request = support_pb2.ClassifyRequest(text=f"{TEXTS[i % len(TEXTS)]} ({i})", routing_key=key)
    return support.Classify(request, timeout=30).model_version


def test_shadow_of_a_bad_candidate_rolls_back(lifecycle_server: ServerThread, stubs) -> None:
    admin, support = stubs
    rule = admin_pb2.RollbackRule(min_agreement=0.8, min_requests=20)
    admin.SetTrafficPolicy(admin_pb2.TrafficPolicy(
        name=CLASSIFIER, shadow_version=SHUFFLED, shadow_percent=100, rollback=rule), timeout=10)
    models = admin.ListModels(admin_pb2.ListModelsRequest(), timeout=10).models
    assert any(m.version == SHUFFLED and m.traffic == "shadow" for m in models)
    with pytest.raises(grpc.RpcError) as err:  # in the policy: cannot be unloaded
        admin.UnloadModel(admin_pb2.UnloadModelRequest(name=CLASSIFIER, version=SHUFFLED))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    answered = {_classify(support, i) for i in range(40)}
    assert answered == {f"{CLASSIFIER}/1"}  # never an answer from the shadow
    lifecycle_server.call(lifecycle_server.app.traffic.drain())
    report = _report(admin)
    v3 = next(v for v in report.versions if v.version == SHUFFLED)
    assert v3.compared >= 20 and v3.agreement < 0.8
    assert report.policy.shadow_percent == 0  # cleared
    rollback = [e for e in report.events if e.kind == "auto_rollback"]
    assert rollback and f"{CLASSIFIER}/{SHUFFLED}: agreement" in rollback[-1].detail
    assert any(e.kind == "policy_set" and e.actor.startswith("ipv4:") for e in report.events)


def test_canary_is_sticky_and_stops_after_rollback(lifecycle_server: ServerThread,
                                                   stubs) -> None:
    admin, support = stubs
    # Find a routing key on each side of a 50% split first (no rule: nothing rolls back).
    admin.SetTrafficPolicy(admin_pb2.TrafficPolicy(
        name=CLASSIFIER, canary_version=SHUFFLED, canary_percent=50), timeout=10)
    sides = {key: {_classify(support, i, key) for i in range(4)}
             for key in (f"conv-{n}" for n in range(12))}
    assert all(len(v) == 1 for v in sides.values())  # sticky: one version per key
    assert {next(iter(v)) for v in sides.values()} == {f"{CLASSIFIER}/1",
                                                       f"{CLASSIFIER}/{SHUFFLED}"}
    canary_keys = [k for k, v in sides.items() if v == {f"{CLASSIFIER}/{SHUFFLED}"}]
    rule = admin_pb2.RollbackRule(min_agreement=0.8, min_requests=10)
    admin.SetTrafficPolicy(admin_pb2.TrafficPolicy(
        name=CLASSIFIER, canary_version=SHUFFLED, canary_percent=50, rollback=rule), timeout=10)
    for i in range(12):
        _classify(support, i, canary_keys[i % len(canary_keys)])
        lifecycle_server.call(lifecycle_server.app.traffic.drain())
    report = _report(admin)
    assert report.policy.canary_percent == 0
    assert any(e.kind == "auto_rollback" for e in report.events)
    after = {_classify(support, i, k) for i, k in enumerate(canary_keys * 3)}
    assert after == {f"{CLASSIFIER}/1"}  # answers from the canary stopped


def test_decision_records_name_the_shadow_version(lifecycle_server: ServerThread,
                                                  stubs) -> None:
    admin, _ = stubs
    admin.SetTrafficPolicy(admin_pb2.TrafficPolicy(
        name=CLASSIFIER, shadow_version=SHUFFLED, shadow_percent=100), timeout=10)
    with grpc.insecure_channel(lifecycle_server.address) as ch:
        call = support_pb2_grpc.SupportStub(ch).Respond(support_pb2.RespondRequest(
            text="where is my order?", conversation_id="conv-shadow"), timeout=60)
        finals = [e.final for e in call if e.HasField("final")]
    record = admin.GetDecision(admin_pb2.GetDecisionRequest(
        decision_id=finals[0].decision_id), timeout=10)
    assert record.model_versions["classifier"] == f"{CLASSIFIER}/1"
    assert record.model_versions["classifier_shadow"] == f"{CLASSIFIER}/{SHUFFLED}"

