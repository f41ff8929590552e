"""The policy in force, behind one reference that `ReloadPolicies` swaps atomically.

A Respond call takes `current` once at its start and keeps that bundle (policy,
compiled output checks, router) to the end, so an in-flight call finishes under the
version it started with and its decision record names that version.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from server.concurrency import run_blocking
from server.errors import InvalidInput, checked_path, short
from server.governance.guard import OutputChecks
from server.governance.pii import PiiDetector
from server.governance.policy import Policy, load_policy
from server.governance.routing import Router


@dataclass(frozen=True)
class PolicyBundle:
    policy: Policy
    checks: OutputChecks
    router: Router

    @property
    def version(self) -> str:
        return self.policy.version


def compile_policy(policy: Policy, detector: PiiDetector) -> PolicyBundle:
    return PolicyBundle(policy, OutputChecks(policy, detector), Router(policy))


class PolicyState:
    def __init__(self, path: str, detector: PiiDetector) -> None:
        self._path = path
        self._detector = detector
        self.current = compile_policy(load_policy(path or None), detector)

    async def reload(self, path: str = "", executor: Executor | None = None) -> tuple[str, str]:
        """Load and compile a policy file off the loop, then swap. Returns (new, old)."""
        source = checked_path(path, "policy path") if path else self._path
        try:
            bundle = await run_blocking(
                executor, lambda: compile_policy(load_policy(Path(source) if source else None),
                                                 self._detector)
            )
        except OSError as exc:  # unreadable (a directory, no permission, name too long)
            raise InvalidInput(f"policy file {short(source)} cannot be read: "
                               f"{exc.strerror or exc.__class__.__name__}") from exc
        previous = self.current
        self.current = bundle  # the swap: one reference assignment
        if path:
            self._path = path
        return bundle.version, previous.version
