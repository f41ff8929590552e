"""The generation contract: what the pipeline hands a generator and what it gets back.

The pipeline builds a `Grounding` (intent, channel, redacted message, facts from the
knowledge graph, help-center passages, optional cross-sell offers, the route) and asks
a `Generator` to stream `Chunk`s. Every chunk names the sources its words came from so
the stream guard and the decision record can check and cite them. Generators never talk
gRPC and never bypass the stream guard: they only produce chunks.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec

FactValue = str | int | float | bool | None

CHANNELS = ("chat", "email", "social")
ROUTES = ("automated", "human")
# What a chunk is for. Only "body" and "offer" state facts and must carry sources;
# greetings, closings (questions, next steps, sign-offs) and the handoff notice do not.
CHUNK_ROLES = ("greeting", "body", "offer", "handoff", "closing")


class Fact(msgspec.Struct, frozen=True):
    """One grounded statement from the knowledge layer, with its structured fields."""

    kind: str  # "order" | "return_eligibility" | "warranty" | "refund" | "customer" | "product"
    source_id: str  # e.g. order id "A10023", policy id "POL-RETURNS"
    source_kind: str  # "order" | "product" | "policy" | "warranty" | "customer" | "return"
    text: str  # one-line statement, usable as is
    data: dict[str, FactValue] = {}


class PassageRef(msgspec.Struct, frozen=True):
    """A retrieved help-center or policy passage."""

    id: str  # passage (chunk) id
    source_id: str  # article or policy id
    kind: str  # "article" | "policy" | "guideline" | "faq"
    title: str
    text: str
    score: float


class Offer(msgspec.Struct, frozen=True):
    """A cross-sell candidate the pipeline allowed for this answer."""

    product_id: str
    title: str
    reason: str
    score: float


class Grounding(msgspec.Struct, frozen=True):
    """Everything a generator may say, and nothing more."""

    intent: str  # one of the demo intents (plans.INTENTS) or "out_of_scope"
    confidence: float
    channel: str  # "chat" | "email" | "social"
    customer_name: str  # may be ""
    message: str  # the customer's text, already PII-redacted
    facts: list[Fact] = []
    passages: list[PassageRef] = []
    offers: list[Offer] = []  # cross-sell; empty when not allowed
    route: str = "automated"  # "automated" | "human"
    handoff_message: str = ""  # what to tell the customer when route is "human"
    question: str = ""  # a clarifying question to ask instead of answering
    linked_order_id: str = ""  # the order this turn is about (server/conversation)
    flow_text: str = ""  # the guided flow's step: what to tell or ask now
    flow_id: str = ""  # the flow the step belongs to (its source)
    flow_asks: bool = False  # the step waits for the customer's reply

    def source_ids(self) -> tuple[str, ...]:
        """Ids of every fact and passage source, first-seen order, without duplicates."""
        ids = [f.source_id for f in self.facts] + [p.source_id for p in self.passages]
        return tuple(dict.fromkeys(ids))

    def source_kinds(self) -> tuple[str, ...]:
        """Kinds of every fact and passage source, first-seen order, without duplicates."""
        kinds = [f.source_kind for f in self.facts] + [p.kind for p in self.passages]
        return tuple(dict.fromkeys(kinds))


class Chunk(msgspec.Struct):
    """A piece of the answer as it streams, tied to the sources its words came from.

    Concatenating the `text` of all chunks of one answer gives the whole answer
    (separators such as spaces and blank lines are part of the chunk text).
    """

    text: str
    source_ids: tuple[str, ...] = ()
    source_kinds: tuple[str, ...] = ()
    role: str = "body"  # one of CHUNK_ROLES


@runtime_checkable
class Generator(Protocol):
    """Streams an answer for a grounding.

    `stream` is an async generator. It must stop promptly when the consumer stops
    iterating (`aclose()`, CancelledError) or when `cancel` is set; CPU-heavy work runs
    off the event loop and is stopped when the consumer goes away.
    """

    name: str
    version: str

    def stream(
        self, g: Grounding, cancel: threading.Event | None = None
    ) -> AsyncIterator[Chunk]: ...
