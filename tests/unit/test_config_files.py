"""Config files layered in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import load_config
from server.errors import InvalidInput


def test_several_files_merge_in_order(tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text('[server]\nport = 50051\ngrace_s = 5.0\n[auth]\nenabled = true\n')
    auth = tmp_path / "auth.toml"
    auth.write_text('[server]\ngrace_s = 7.0\n[[auth.api_keys]]\nid = "k"\nsha256 = "00"\n')
    config = load_config([base, auth], environ={"AFTERCARE_SERVER__PORT": "50052"})
    assert config.server.grace_s == 7.0  # the later file wins
    assert config.server.port == 50052  # the environment over every file
    assert config.auth.enabled and [k.id for k in config.auth.api_keys] == ["k"]
    assert load_config(str(base), environ={}).server.grace_s == 5.0  # one path still works
    with pytest.raises(InvalidInput, match="not found"):
        load_config([base, tmp_path / "missing.toml"], environ={})
    auth.write_text("[server]\ngrace = 1\n")  # a typo stops startup
    with pytest.raises(InvalidInput, match="grace"):
        load_config([base, auth], environ={})

