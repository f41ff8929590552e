"""Model lifecycle on the real server: load, activate, roll back and unload under load,
with zero failed requests; corrupt candidates; RSS over load/unload cycles; audit."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from server.inference.lifecycle import index_identity
from server.inference.rss import rss_mb
from tests.functional.harness import ServerThread
from tests.functional.lifecycle_repo import (
    CLASSIFIER,
    EMBEDDER,
    NOT_ONNX,
    TRUNCATED,
    WRONG_LABELS,
)

TEXTS = ["where is my order", "I want a refund", "cancel my order please",
         "my card was declined", "talk to a human", "change my delivery address"]


@pytest.fixture(scope="module")
def server(lifecycle_server: ServerThread) -> ServerThread:
    return lifecycle_server


@pytest.fixture()
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


def _admin(ch: grpc.Channel) -> admin_pb2_grpc.AdminStub:
    return admin_pb2_grpc.AdminStub(ch)


def _states(ch: grpc.Channel) -> dict[int, admin_pb2.ModelInfo]:
    models = _admin(ch).ListModels(admin_pb2.ListModelsRequest(), timeout=10).models
    return {m.version: m for m in models if m.name == CLASSIFIER}


class ClosedLoop:
    """`workers` clients that each send the next Classify as soon as one returns."""

    def __init__(self, address: str, workers: int = 32) -> None:
        self._channel = grpc.insecure_channel(address)
        self._stub = support_pb2_grpc.SupportStub(self._channel)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(workers)
        self._workers = workers
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def _client(self, i: int) -> None:
        n = 0
        while not self._stop.is_set():
            text = f"{TEXTS[(i + n) % len(TEXTS)]} #{i}"
            n += 1
            try:
                resp = self._stub.Classify(support_pb2.ClassifyRequest(text=text), timeout=30)
                with self._lock:
                    self.versions[resp.model_version] += 1
            except grpc.RpcError as exc:
                with self._lock:
                    self.failures.append(f"{exc.code()}: {exc.details()}")

    def __enter__(self) -> ClosedLoop:
        for i in range(self._workers):
            self._pool.submit(self._client, i)
        return self

    def wait_for(self, count: int) -> None:
        """Block until `count` more answers arrived (no sleeping: a condition poll)."""
        target = sum(self.versions.values()) + count
        while sum(self.versions.values()) < target and not self.failures:
            self._stop.wait(0.01)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)
        self._channel.close()


def test_list_models_shows_states_roles_and_metrics(channel: grpc.Channel) -> None:
    models = _admin(channel).ListModels(admin_pb2.ListModelsRequest(), timeout=10).models
    active = {m.role: m for m in models if m.state == "ACTIVE"}
    assert set(active) == {"classifier", "embedder"}
    assert active["classifier"].version == 1 and active["classifier"].active
    assert active["classifier"].traffic == "active"
    assert "int8_cosine_min" in active["classifier"].metrics
    assert active["embedder"].name == "minilm-embedder"


def test_load_activate_rollback_unload(channel: grpc.Channel) -> None:
    admin, support = _admin(channel), support_pb2_grpc.SupportStub(channel)
    info = admin.LoadModel(admin_pb2.LoadModelRequest(name=CLASSIFIER, version=2), timeout=60)
    assert (info.state, info.role, info.traffic) == ("READY", "classifier", "")
    swap = admin.ActivateModel(admin_pb2.ActivateModelRequest(name=CLASSIFIER, version=2),
                               timeout=60)
    assert (swap.previous, swap.active) == (f"{CLASSIFIER}/1", f"{CLASSIFIER}/2")
    resp = support.Classify(support_pb2.ClassifyRequest(text="where is my order"), timeout=30)
    assert resp.model_version == f"{CLASSIFIER}/2"
    assert _states(channel)[1].state == "READY"  # kept for a fast rollback
    back = admin.Rollback(admin_pb2.RollbackRequest(name=CLASSIFIER), timeout=60)
    assert (back.previous, back.active) == (f"{CLASSIFIER}/2", f"{CLASSIFIER}/1")
    with pytest.raises(grpc.RpcError) as err:
        admin.UnloadModel(admin_pb2.UnloadModelRequest(name=CLASSIFIER, version=1), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    gone = admin.UnloadModel(admin_pb2.UnloadModelRequest(name=CLASSIFIER, version=2),
                             timeout=10)
    assert gone.state in ("DRAINING", "UNLOADED")
    with pytest.raises(grpc.RpcError) as err:
        admin.LoadModel(admin_pb2.LoadModelRequest(name=CLASSIFIER, version=99), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_zero_drops_while_activations_alternate(server: ServerThread,
                                                channel: grpc.Channel) -> None:
    admin = _admin(channel)
    admin.LoadModel(admin_pb2.LoadModelRequest(name=CLASSIFIER, version=2), timeout=60)
    with ClosedLoop(server.address, workers=32) as load:
        load.wait_for(64)
        for i in range(20):
            version = 2 if i % 2 == 0 else 1
            admin.ActivateModel(admin_pb2.ActivateModelRequest(name=CLASSIFIER,
                                                               version=version), timeout=60)
            load.wait_for(16)
    assert load.failures == []
    assert set(load.versions) == {f"{CLASSIFIER}/1", f"{CLASSIFIER}/2"}
    assert _states(channel)[1].state == "ACTIVE"  # 20 swaps end where they began


@pytest.mark.parametrize(("version", "reason"), [(NOT_ONNX, "INVALID_PROTOBUF"),
                                                 (TRUNCATED, "sha256 mismatch"),
                                                 (WRONG_LABELS, "probabilities have shape")])
def test_corrupt_candidate_under_load(server: ServerThread, channel: grpc.Channel,
                                      version: int, reason: str) -> None:
    admin = _admin(channel)
    before = _states(channel)
    serving = next(v for v, m in before.items() if m.state == "ACTIVE")
    with ClosedLoop(server.address, workers=8) as load:
        load.wait_for(16)
        with pytest.raises(grpc.RpcError) as err:
            admin.LoadModel(admin_pb2.LoadModelRequest(name=CLASSIFIER, version=version),
                            timeout=60)
        load.wait_for(16)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason in err.value.details()
    assert load.failures == []
    assert set(load.versions) == {f"{CLASSIFIER}/{serving}"}
    after = _states(channel)
    assert after[version].state == "FAILED" and reason in after[version].error
    assert after[serving].state == "ACTIVE"
    with pytest.raises(grpc.RpcError) as err:  # activating it loads it, and fails the same
        admin.ActivateModel(admin_pb2.ActivateModelRequest(name=CLASSIFIER, version=version),
                            timeout=60)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _states(channel)[serving].state == "ACTIVE"


def test_load_unload_cycles_keep_rss_bounded(server: ServerThread, channel: grpc.Channel,
                                             record_property: Callable[[str, object], None]
                                             ) -> None:
    admin = _admin(channel)
    request = admin_pb2.LoadModelRequest(name=CLASSIFIER, version=2)

    def cycle() -> None:
        if _states(channel).get(2, admin_pb2.ModelInfo()).state in ("READY", "ACTIVE"):
            if _states(channel)[2].state == "ACTIVE":
                admin.ActivateModel(admin_pb2.ActivateModelRequest(name=CLASSIFIER, version=1),
                                    timeout=60)
        else:
            admin.LoadModel(request, timeout=60)
        admin.UnloadModel(admin_pb2.UnloadModelRequest(name=CLASSIFIER, version=2), timeout=10)
        server.call(server.app.registry.wait_closed())

    for _ in range(3):  # settle allocator pools before the baseline
        cycle()
    start = rss_mb()
    for _ in range(50):
        cycle()
    growth = rss_mb() - start
    record_property("rss_growth_mb_50_cycles", round(growth, 1))
    print(f"RSS growth over 50 load/unload cycles: {growth:.1f} MB")
    # One loaded classifier version is ~40 MB here: a leak of one per cycle would be GBs.
    assert growth < 150
    assert _states(channel)[2].state == "UNLOADED"


def test_admin_calls_are_audited_with_the_peer(server: ServerThread,
                                               channel: grpc.Channel) -> None:
    records = server.call(server.app.audit.audit_records(500))
    loads = [r for r in records if r.action == "LoadModel"]
    assert loads and all(r.actor.startswith("ipv4:127.0.0.1:") for r in loads)
    assert any(r.result.startswith("FAILED_PRECONDITION") for r in loads)
    assert any(r.result == "OK" for r in loads)
    assert not any(r.action == "ListModels" for r in records)  # reads are not audited
    report = _admin(channel).GetTrafficReport(
        admin_pb2.GetTrafficReportRequest(name=CLASSIFIER), timeout=10)
    kinds = {e.kind for e in report.events}
    assert {"loaded", "load_failed", "activated", "rolled_back", "unloaded"} <= kinds


def test_embedder_and_its_index_swap_together(server: ServerThread,
                                              channel: grpc.Channel) -> None:
    app = server.app
    assert app is not None
    admin = _admin(channel)
    search = support_pb2.SearchRequest(query="how do I return an item", top_k=3)
    swap = admin.ActivateModel(admin_pb2.ActivateModelRequest(name=EMBEDDER, version=2),
                               timeout=300)
    assert swap.active == f"{EMBEDDER}/2"
    active = app.registry.get("embedder")
    # The served index was built from exactly the served encoder (version and hash).
    assert app.knowledge.current.retriever.version.startswith(index_identity(active) + "+")
    passages = support_pb2_grpc.SupportStub(channel).Search(search, timeout=30)
    assert passages.passages and passages.index_version.startswith(f"{EMBEDDER}/2@")
    back = admin.Rollback(admin_pb2.RollbackRequest(name=EMBEDDER), timeout=300)
    assert back.active == f"{EMBEDDER}/1"
    assert app.knowledge.current.index_action == "loaded"  # v1's persisted index, found again
    active = app.registry.get("embedder")
    assert app.knowledge.current.retriever.version.startswith(index_identity(active) + "+")
