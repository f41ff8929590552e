"""The policy file's [retention] section: shipped values, defaults, and what is refused."""

from __future__ import annotations

import pytest

from server.errors import DataError
from server.governance.policy import (
    RETENTION_KINDS,
    RetentionPolicy,
    default_policy_path,
    load_policy,
    parse_policy,
)

DEFAULT = default_policy_path().read_text(encoding="utf-8")


def test_shipped_section_covers_every_kind_and_matches_the_defaults() -> None:
    r = load_policy().retention
    for table in (r.channels, r.weights, r.messages):
        assert set(table) == set(RETENTION_KINDS)
    assert r == RetentionPolicy()  # the file spells out the defaults


def test_a_policy_without_the_section_gets_the_defaults() -> None:
    head = DEFAULT.split("\n[retention]")[0]
    assert parse_policy(head.encode()).retention == RetentionPolicy()


@pytest.mark.parametrize("old, new, problem", [
    ("frequency_cap = 2 ", "frequency_cap = 0 ", "frequency_cap >= 1"),
    ("follow_up_days = 3 ", "follow_up_days = -1 ", "follow_up_days must be >= 0"),
    ('cross_sell = "push"', 'cross_sel = "push"', "unknown kinds ['cross_sel']"),
    ("cross_sell = 0.5", "cross_sell = 1.5", "weights must be in [0, 1]"),
    ('win_back = "It has been {days} days', 'win_back = "It has been {when} days',
     "retention.messages.win_back"),
    ('marketing_kinds = ["replenish"', 'marketing_kinds = ["newsletter"',
     "marketing_kinds: unknown kinds"),
    ("stale_days = 21 ", "stale_dayz = 21 ", "unknown field"),
])
def test_bad_retention_values_are_refused(old: str, new: str, problem: str) -> None:
    assert old in DEFAULT
    with pytest.raises(DataError) as err:
        parse_policy(DEFAULT.replace(old, new, 1).encode())
    assert problem in str(err.value)
