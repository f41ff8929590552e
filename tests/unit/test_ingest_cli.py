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


def test_ingest_an_export_with_mapping_prints_derived_and_the_top_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = Path(__file__).resolve().parents[1] / "data" / "exports" / "online-retail-ii"
    assert _run(["ingest", str(export), "--mapping", str(export / "mapping.toml"),
                 "--quarantine", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["entities"]["transactions"]["read"] == 37
    assert any(line.startswith("transactions") and line.split()[1:] == ["37", "31", "6", "0"]
               for line in out)
    assert any(line.startswith("derived: ") and "orders.total 11" in line for line in out)
    at = out.index("quarantined 6 rows for 3 reasons; the 3 most common:")
    assert out[at + 1].split() == ["4", "transactions:", "guest", "line", "without", "customer_id"]
    assert out[at + 2].strip().startswith("e.g. online_retail_II.csv:21 (guest line")
    assert "bad date in ordered_at" in out[at + 3]
    assert len(Path(summary["quarantine_path"]).read_text().splitlines()) == 6


def test_ingest_olist_with_mapping_and_currency(capsys: pytest.CaptureFixture[str]) -> None:
    export = Path(__file__).resolve().parents[1] / "data" / "exports" / "olist"
    assert _run(["ingest", str(export), "--mapping", str(export / "mapping.toml"),
                 "--currency", "brl", "--as-of", "2018-09-01"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["entities"]["orders"]["accepted"] == 9
    assert summary["derived"]["orders.currency"] == 9


def test_bad_mapping_file_is_invalid_input(tmp_path: Path) -> None:
    from server.errors import InvalidInput

    with pytest.raises(InvalidInput, match="mapping file not found"):
        _run(["ingest", str(tmp_path), "--mapping", str(tmp_path / "nope.toml")])
