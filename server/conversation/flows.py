"""Guided flows as data: procedures (damaged item, missing parcel, ...) read from TOML.

A flow is a list of steps; the first step is where it starts. A step may need slots
(what the customer must tell us, e.g. `order_id`), then goes on by `next`, by the
first matching `branches` entry (a fact of the linked order checked against a list of
values; a branch without `fact` is the default), or ends with an `action`:
"handoff" (a human takes over), "approval" (an agent must approve what we offered),
"information" (we told the customer what they need). The file format is documented in
docs/flows.md; the shop's own flows ship in server/conversation/data/.

The engine is pure and deterministic: given the same flow, step, slots and facts it
returns the same `FlowStep`. It walks from a step through every step it can decide
with what it has, and stops at the first slot still missing or at the end.
Definitions are checked when loaded (unknown step ids, dead ends, cycles, unreachable
steps), so a broken flow file is a startup error, not a stuck conversation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import msgspec

from server.errors import DataError, NotFound

ACTIONS = ("handoff", "approval", "information")
FactValue = str | bool | int


class FlowStep(msgspec.Struct, frozen=True):
    """Where a flow stands after a walk: what to tell or ask the customer now."""

    flow_id: str
    step_id: str
    text: str  # what to tell/ask the customer at this step
    needs_slot: str = ""  # slot the customer must provide next ("" = none)
    action: str = ""  # "handoff" | "approval" | "information" | "" (not at the end yet)
    done: bool = False
    facts_checked: list[str] = []


class BranchDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    next: str
    fact: str = ""  # "" = the default branch
    values: list[FactValue] = msgspec.field(default_factory=list, name="in")
    at_most: int | None = None  # numeric facts (days_since_delivery): value <= at_most
    at_least: int | None = None

    def matches(self, value: Any) -> bool:
        if self.values and not _matches(value, self.values):
            return False
        if self.at_most is not None or self.at_least is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            if self.at_most is not None and value > self.at_most:
                return False
            if self.at_least is not None and value < self.at_least:
                return False
        return True


class StepDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    text: str = ""
    needs: list[str] = []
    next: str = ""
    branches: list[BranchDef] = []
    action: Literal["handoff", "approval", "information", ""] = ""


class FlowDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    steps: list[StepDef]
    title: str = ""
    intents: list[str] = []
    source: str = ""  # where the definition came from (a file, "abcd"); for records


class FlowFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    flows: list[FlowDef]
    format: int = 1


def _matches(value: Any, options: Sequence[FactValue]) -> bool:
    # Strict on type: a fact True must not match an option 1, nor "true".
    return any(type(value) is type(o) and value == o for o in options)


class FlowEngine:
    """The loaded flows and the walk over them."""

    def __init__(self, flows: Mapping[str, FlowDef], by_intent: Mapping[str, str]) -> None:
        self._flows = dict(flows)
        self._by_intent = dict(by_intent)
        self._steps = {fid: {s.id: s for s in f.steps} for fid, f in self._flows.items()}

    @property
    def flow_ids(self) -> list[str]:
        return sorted(self._flows)

    def flow(self, flow_id: str) -> FlowDef:
        try:
            return self._flows[flow_id]
        except KeyError:
            raise NotFound(f"flow {flow_id!r} not found") from None

    def flow_for_intent(self, intent: str) -> str | None:
        return self._by_intent.get(intent)

    def start(self, flow_id: str, slots: dict[str, str], facts: dict[str, Any]) -> FlowStep:
        return self._walk(self.flow(flow_id), self.flow(flow_id).steps[0].id, slots, facts)

    def advance(self, flow_id: str, step_id: str, slots: dict[str, str],
                facts: dict[str, Any]) -> FlowStep:
        """Resume at `step_id` (where the flow waited) with what is known now."""
        flow = self.flow(flow_id)
        if step_id not in self._steps[flow_id]:
            raise NotFound(f"flow {flow_id!r} has no step {step_id!r}")
        return self._walk(flow, step_id, slots, facts)

    def _walk(self, flow: FlowDef, step_id: str, slots: Mapping[str, str],
              facts: Mapping[str, Any]) -> FlowStep:
        steps = self._steps[flow.id]
        checked: list[str] = []
        # Loading rejects cycles, so a walk visits each step at most once.
        for _ in range(len(steps)):
            step = steps[step_id]
            missing = next((s for s in step.needs if not slots.get(s)), "")
            if missing:
                return FlowStep(flow.id, step.id, step.text, needs_slot=missing,
                                facts_checked=checked)
            if step.action:
                return FlowStep(flow.id, step.id, step.text, action=step.action, done=True,
                                facts_checked=checked)
            step_id = step.next or self._branch(step, facts, checked)
        raise AssertionError(f"flow {flow.id} did not end within {len(steps)} steps")

    @staticmethod
    def _branch(step: StepDef, facts: Mapping[str, Any], checked: list[str]) -> str:
        for b in step.branches:
            if not b.fact:
                return b.next
            if b.fact not in checked:
                checked.append(b.fact)
            if b.fact in facts and b.matches(facts[b.fact]):
                return b.next
        raise AssertionError(f"step {step.id} has no default branch")  # checked on load


def _validate(flow: FlowDef, origin: str) -> None:
    where = f"{origin}: flow {flow.id!r}"
    if not flow.id:
        raise DataError(f"{origin}: a flow without an id")
    if not flow.steps:
        raise DataError(f"{where} has no steps")
    ids = [s.id for s in flow.steps]
    if len(set(ids)) != len(ids) or "" in ids:
        raise DataError(f"{where}: step ids must be unique and not empty")
    known = set(ids)
    edges: dict[str, list[str]] = {}
    for s in flow.steps:
        ways = sum((bool(s.next), bool(s.branches), bool(s.action)))
        if ways != 1:
            raise DataError(f"{where}, step {s.id!r}: give exactly one of next, branches, "
                            "action")
        if (s.needs or s.action) and not s.text.strip():
            raise DataError(f"{where}, step {s.id!r}: a step that asks or ends needs text")
        if "{" in s.text or "}" in s.text:
            raise DataError(f"{where}, step {s.id!r}: texts are literal, no placeholders")
        if s.branches:
            if s.branches[-1].fact:
                raise DataError(f"{where}, step {s.id!r}: the last branch must be the "
                                "default (no fact)")
            for b in s.branches:
                if b.fact and not b.values and b.at_most is None and b.at_least is None:
                    raise DataError(f"{where}, step {s.id!r}: branch on {b.fact!r} has no "
                                    "condition ('in', 'at_most' or 'at_least')")
        targets = [s.next] if s.next else [b.next for b in s.branches]
        for t in targets:
            if t not in known:
                raise DataError(f"{where}, step {s.id!r}: unknown next step {t!r}")
        edges[s.id] = targets
    _check_acyclic_and_reachable(edges, ids[0], where)


def _check_acyclic_and_reachable(edges: dict[str, list[str]], start: str, where: str) -> None:
    state: dict[str, int] = {}  # 1 = on the path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                raise DataError(f"{where}: steps form a cycle {' -> '.join([*path, nxt])}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    visit(start, [start])
    unreachable = [s for s in edges if s not in state]
    if unreachable:
        raise DataError(f"{where}: unreachable step(s) {', '.join(unreachable)}")


def parse_flows(document: Mapping[str, Any], origin: str) -> list[FlowDef]:
    """Flows from one decoded document (a TOML file, or an adapter's output)."""
    try:
        parsed = msgspec.convert(document, FlowFile)
    except msgspec.ValidationError as exc:
        raise DataError(f"{origin}: invalid flow file: {exc}") from None
    if parsed.format != 1:
        raise DataError(f"{origin}: unsupported flow file format {parsed.format}")
    seen: dict[str, str] = {}
    claimed: dict[str, str] = {}
    out = []
    for flow in parsed.flows:
        _validate(flow, origin)
        if flow.id in seen:
            raise DataError(f"{origin}: flow {flow.id!r} is defined twice")
        seen[flow.id] = flow.id
        for intent in flow.intents:
            if intent in claimed:
                raise DataError(f"{origin}: intent {intent!r} starts both {claimed[intent]!r} "
                                f"and {flow.id!r}")
            claimed[intent] = flow.id
        out.append(msgspec.structs.replace(flow, source=flow.source or origin))
    return out


def read_flow_file(path: Path) -> list[FlowDef]:
    import tomllib

    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"flow file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"flow file {path} is not valid TOML: {exc}") from None
    return parse_flows(document, str(path))


def default_flow_files() -> list[Path]:
    """The demo shop's own flows, shipped with the package."""
    data = resources.files("server.conversation") / "data"
    return sorted(Path(str(p)) for p in data.iterdir() if p.name.endswith(".toml"))


def load_flows(paths: Sequence[Path] = (), *, documents: Sequence[tuple[str, Mapping[str, Any]]]
               = (), defaults: bool = True) -> FlowEngine:
    """The shipped defaults, then adapter `documents` (origin, document), then `paths`.

    A later definition of the same flow id replaces the earlier one (a shop overrides a
    default by redefining it), and so does a later claim of an intent.
    """
    groups: list[list[FlowDef]] = []
    if defaults:
        groups += [read_flow_file(p) for p in default_flow_files()]
    groups += [parse_flows(doc, origin) for origin, doc in documents]
    groups += [read_flow_file(Path(p)) for p in paths]
    flows: dict[str, FlowDef] = {}
    by_intent: dict[str, str] = {}
    for group in groups:
        for flow in group:
            old = flows.get(flow.id)
            if old is not None:
                for intent in old.intents:
                    if by_intent.get(intent) == flow.id:
                        del by_intent[intent]
            flows[flow.id] = flow
            for intent in flow.intents:
                by_intent[intent] = flow.id
    return FlowEngine(flows, by_intent)
