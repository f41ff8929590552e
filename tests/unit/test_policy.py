"""Policy file: loading, typing, validation, hash, handoff and cross-sell lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.errors import DataError
from server.governance.policy import RULE_IDS, default_policy_path, load_policy, parse_policy

DEFAULT = default_policy_path().read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_default_policy_loads() -> None:
    policy = load_policy()
    assert policy.version == "2026.12.1"
    assert len(policy.content_hash) == 16
    assert policy.escalation.refund_auto_limit == 150.0
    assert "vip" in policy.escalation.vip_segments
    assert "complaint" not in policy.cross_sell.allowed_intents
    assert "damaged_item" not in policy.cross_sell.allowed_intents
    assert all(
        policy.escalation.action(r) in ("handoff", "flag", "offer") for r in RULE_IDS
    )


def test_hash_follows_content(tmp_path: Path) -> None:
    a = load_policy(write(tmp_path, DEFAULT))
    assert a.content_hash == load_policy().content_hash
    b = load_policy(write(tmp_path, DEFAULT + "\n# a comment changes the bytes\n"))
    assert b.content_hash != a.content_hash


def test_missing_file() -> None:
    with pytest.raises(DataError, match="cannot be read"):
        load_policy("/nonexistent/policy.toml")


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not valid TOML"):
        load_policy(write(tmp_path, "version = \n"))


def test_unknown_top_level_field(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="surprise"):
        load_policy(write(tmp_path, "surprise = 1\n" + DEFAULT))


def test_unknown_nested_field(tmp_path: Path) -> None:
    text = DEFAULT.replace("[escalation]\n", "[escalation]\nmin_confidnce = 0.3\n")
    with pytest.raises(DataError, match="min_confidnce"):
        load_policy(write(tmp_path, text))


def test_wrong_type(tmp_path: Path) -> None:
    text = DEFAULT.replace("repeat_contact_limit = 3", 'repeat_contact_limit = "three"')
    with pytest.raises(DataError, match="repeat_contact_limit"):
        load_policy(write(tmp_path, text))


def test_bad_rule_action(tmp_path: Path) -> None:
    text = DEFAULT.replace('vip_rule = "offer"', 'vip_rule = "maybe"')
    with pytest.raises(DataError, match="vip_rule"):
        load_policy(write(tmp_path, text))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('version = "2026.12.1"', 'version = "latest"', "version"),
        ("min_confidence = 0.55", "min_confidence = 1.5", "min_confidence"),
        ("holdback_chars = 64", "holdback_chars = 4", "holdback_chars"),
        ("repeat_contact_limit = 3", "repeat_contact_limit = 0", "repeat_contact_limit"),
        (
            "order_id_pattern = '(?<![\\w-])[A-Z]\\d{4,8}(?![\\w-])'",
            "order_id_pattern = '([A-Z'",
            "bad regex",
        ),
        ('"calm down",', '"",', "empty"),
    ],
)
def test_invalid_values(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in DEFAULT
    with pytest.raises(DataError, match=message):
        load_policy(write(tmp_path, DEFAULT.replace(old, new)))


def test_content_hash_cannot_be_set() -> None:
    with pytest.raises(DataError, match="content_hash"):
        parse_policy(('content_hash = "x"\n' + DEFAULT).encode())


def test_handoff_message_fallbacks() -> None:
    policy = load_policy()
    h = policy.handoff
    assert policy.handoff_message("asked_for_human", "chat") == h["asked_for_human"]["chat"]
    assert policy.handoff_message("asked_for_human", "email") == h["asked_for_human"]["default"]
    assert policy.handoff_message("no_such_rule", "email") == h["default"]["email"]
    assert policy.handoff_message("no_such_rule", "fax") == h["default"]["default"]


def test_cross_sell_rules() -> None:
    policy = load_policy()
    assert policy.cross_sell_allowed("order_status")
    assert not policy.cross_sell_allowed("complaint")
    assert not policy.cross_sell_allowed("order_status", refund_in_progress=True)
    assert not policy.cross_sell_allowed("order_status", handoff=True)
