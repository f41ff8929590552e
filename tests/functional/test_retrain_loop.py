"""The whole loop on a tiny model: corrections in (Admin.AddCorrection), retrain from
them, shadow agreement reported, canary, activate, all through the real server and CLI.

The models are the tiny random BERT of tests/unit/test_models_tiny.py (hidden 32), so
the loop runs in CI time; it checks the machinery, not model quality.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from models.build import CLASSIFIER_NAME, BuildOptions, build_models
from models.repository import ModelRepository
from server.cli import main
from tests.functional.harness import ServerThread
from tests.unit.test_models_tiny import FLOOR, ROWS, _write_csv, _write_tiny_bert

CORRECTIONS = [("i want to cancel the order now", "cancel_order"),
               ("where is the parcel please", "order_status"),
               ("my money back now please", "refund_status"),
               ("stop it now", "cancel_order"),
               ("track the package please", "order_status"),
               ("refund it please", "refund_status")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, server_overrides: dict
         ) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    root = tmp_path_factory.mktemp("retrain")
    _write_tiny_bert(root / "bert")
    _write_csv(root / "train.csv", [(t, k) for k, texts in ROWS.items() for t in texts])
    build_models(BuildOptions(repository=root / "repo", intents=root / "train.csv",
                              text_col="utterance", label_col="label", source=root / "bert",
                              cache_dir=root / "cache", cosine_floor=FLOOR, max_length=32,
                              augment_copies=1))
    records = root / "records.sqlite"
    srv = ServerThread({
        **server_overrides,
        "models": {"repository": str(root / "repo"), "max_length": 32, "classifier_version": 1,
                   "embedder_version": 1},
        "records": {"path": str(records)},
        "retrieval": {"index_dir": str(root / "index")},
    }).start()
    paths = {"root": str(root), "records": str(records)}
    yield srv, paths
    srv.stop()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_corrections_retrain_shadow_canary_activate(
        tiny: tuple[ServerThread, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    srv, paths = tiny
    root = Path(paths["root"])
    with grpc.insecure_channel(srv.address) as ch:
        support, admin = support_pb2_grpc.SupportStub(ch), admin_pb2_grpc.AdminStub(ch)
        # 1. Answers, then an agent's corrections of them (one twice: deduplicated).
        ids = []
        for i, (text, _) in enumerate(CORRECTIONS):
            call = support.Respond(support_pb2.RespondRequest(
                text=text, conversation_id=f"conv-{i}"), timeout=60)
            ids.append(next(e.final.decision_id for e in call if e.HasField("final")))
        for decision_id, (_, label) in zip(ids, CORRECTIONS, strict=True):
            resp = admin.AddCorrection(admin_pb2.CorrectionRequest(
                decision_id=decision_id, true_intent=label, note="agent label"), timeout=10)
            assert not resp.duplicate
        again = admin.AddCorrection(admin_pb2.CorrectionRequest(
            decision_id=ids[0], true_intent=CORRECTIONS[0][1]), timeout=10)
        assert again.duplicate
        with pytest.raises(grpc.RpcError) as err:
            admin.AddCorrection(admin_pb2.CorrectionRequest(decision_id="dec_nope",
                                                            true_intent="cancel_order"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        # 2. Retrain: a new version from the base file plus the corrections.
        server = ("--server", srv.address)
        out = _cli(capsys, "models", "retrain", "--records", paths["records"],
                   "--repository", str(root / "repo"), "--intents", str(root / "train.csv"),
                   "--text-col", "utterance", "--label-col", "label",
                   "--source", str(root / "bert"), "--cache-dir", str(root / "cache"),
                   "--cosine-floor", str(FLOOR), "--max-length", "32",
                   "--augment-copies", "1", "--min-corrections", "6", *server)
        figures = json.loads(out.strip().splitlines()[-1])
        assert figures["version"] == 2 and figures["corrections"] == 6
        manifest = ModelRepository(root / "repo").get(CLASSIFIER_NAME, 2).manifest
        retrain = manifest["training"]["retrain"]
        assert retrain["corrections"] == 6 and retrain["correction_ids"][1] >= 6
        assert retrain["base_sha256"] == manifest["training"]["data_sha256"]
        assert "base_heldout_macro_f1" in manifest["metrics"]
        assert "active_base_heldout_macro_f1" in manifest["metrics"]

        # 3. Load it aside and shadow it: agreement is reported, answers stay v1.
        _cli(capsys, "models", "load", CLASSIFIER_NAME, "2", *server)
        _cli(capsys, "models", "traffic", CLASSIFIER_NAME, "--shadow", "2", "--percent", "100",
             *server)
        texts = [t for texts in ROWS.values() for t in texts]
        answered = {support.Classify(support_pb2.ClassifyRequest(text=t), timeout=30
                                     ).model_version for t in texts}
        assert answered == {f"{CLASSIFIER_NAME}/1"}
        srv.call(srv.app.traffic.drain())  # type: ignore[union-attr]
        report = json.loads(_cli(capsys, "models", "report", CLASSIFIER_NAME, *server,
                                 "--json"))
        v2 = next(v for v in report["versions"] if v["version"] == 2)
        assert v2["traffic"] == "shadow" and int(v2["compared"]) == len(texts)
        assert 0.0 <= v2["agreement"] <= 1.0

        # 4. Canary: a sticky share of conversations is answered by v2.
        _cli(capsys, "models", "traffic", CLASSIFIER_NAME, "--canary", "2", "--percent", "50",
             *server)
        seen = {support.Classify(support_pb2.ClassifyRequest(
            text=texts[i % len(texts)], routing_key=f"conv-{i}"), timeout=30).model_version
            for i in range(40)}
        assert seen == {f"{CLASSIFIER_NAME}/1", f"{CLASSIFIER_NAME}/2"}

        # 5. Promote: v2 answers everyone, the experiment is over.
        _cli(capsys, "models", "activate", CLASSIFIER_NAME, "2", *server)
        resp = support.Classify(support_pb2.ClassifyRequest(text="cancel my order"), timeout=30)
        assert resp.model_version == f"{CLASSIFIER_NAME}/2"
        policy = json.loads(_cli(capsys, "models", "report", CLASSIFIER_NAME, *server,
                                 "--json"))["policy"]
        assert policy["canary_percent"] == 0 and policy["shadow_percent"] == 0
