"""`aftercare models ...` against the real server: tables, --json, errors exit 2."""

from __future__ import annotations

import json

import pytest

from server.cli import main
from tests.functional.harness import ServerThread
from tests.functional.lifecycle_repo import CLASSIFIER, SHUFFLED


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_models_cli_drives_the_lifecycle(lifecycle_server: ServerThread,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    srv = ("--server", lifecycle_server.address)
    code, out, _ = _run(capsys, "models", "activate", CLASSIFIER, "1", *srv)
    assert code == 0 and out.strip().endswith(f"{CLASSIFIER}/1")
    code, out, _ = _run(capsys, "models", "load", CLASSIFIER, "2", *srv, "--json")
    assert code == 0 and json.loads(out)["state"] == "READY"
    code, out, _ = _run(capsys, "models", "activate", CLASSIFIER, "2", *srv, "--json")
    assert json.loads(out) == {"previous": f"{CLASSIFIER}/1", "active": f"{CLASSIFIER}/2"}
    code, out, _ = _run(capsys, "models", "rollback", CLASSIFIER, *srv)
    assert code == 0 and out.strip() == f"{CLASSIFIER}/2 -> {CLASSIFIER}/1"
    code, out, _ = _run(capsys, "models", "status", *srv)
    header, *rows = out.strip().splitlines()
    assert header.split()[:5] == ["name", "version", "state", "role", "traffic"]
    assert any(r.split()[:5] == [CLASSIFIER, "1", "ACTIVE", "classifier", "active"]
               for r in rows)
    code, out, err = _run(capsys, "models", "unload", CLASSIFIER, "1", *srv)
    assert code == 2 and "FAILED_PRECONDITION" in err

    _run(capsys, "models", "load", CLASSIFIER, str(SHUFFLED), *srv)
    code, out, _ = _run(capsys, "models", "traffic", CLASSIFIER, "--shadow", str(SHUFFLED),
                        "--percent", "25", "--canary", "2", "--percent", "10",
                        "--min-agreement", "0.5", "--min-requests", "1000", *srv, "--json")
    policy = json.loads(out)
    assert (policy["shadow_version"], policy["shadow_percent"]) == (SHUFFLED, 25)
    assert (policy["canary_version"], policy["canary_percent"]) == (2, 10)
    assert policy["rollback"]["min_requests"] == 1000
    code, out, _ = _run(capsys, "models", "report", CLASSIFIER, *srv)
    assert code == 0 and "shadow v3 25%" in out and "policy_set" in out
    code, out, _ = _run(capsys, "models", "report", CLASSIFIER, *srv, "--json")
    report = json.loads(out)
    assert {v["traffic"] for v in report["versions"]} >= {"active", "canary", "shadow"}
    code, out, _ = _run(capsys, "models", "traffic", CLASSIFIER, *srv, "--json")  # clear
    assert json.loads(out)["shadow_percent"] == 0
