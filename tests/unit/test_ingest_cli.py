"""`aftercare demo generate` and `aftercare ingest` through their argparse registration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from server.shop_cli import register


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aftercare")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_generate_then_ingest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shop = tmp_path / "shop"
    assert _run(["demo", "generate", "--out", str(shop), "--size", "XS", "--seed", "3",
                 "--dirty"]) == 0
    gen = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert gen["rows"]["customers"] == 206 and gen["dirty"] is True
    assert _run(["ingest", str(shop), "--quarantine", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["snapshot_id"].startswith("snap-")
    assert any(line.startswith("customers") and line.split()[1:] == ["206", "200", "3", "3"]
               for line in out)
    assert summary["entities"]["customers"] == {
        "read": 206, "accepted": 200, "quarantined": 3, "merged": 3,
    }
    assert Path(summary["quarantine_path"]).is_file()


def test_bad_as_of_and_size(tmp_path: Path) -> None:
    from server.errors import InvalidInput

    with pytest.raises(InvalidInput, match="bad date"):
        _run(["ingest", str(tmp_path), "--as-of", "tomorrow"])
    with pytest.raises(SystemExit):
        _run(["demo", "generate", "--out", str(tmp_path), "--size", "XXL"])
