"""The grounded composer: the default generator, always available, fully deterministic.

It turns an intent plan (server/generation/plans.py) into a channel-shaped answer and
streams it as sentence-sized (or smaller, word-group) chunks, each tied to its sources.

Channel formats:
- chat: "Hi <first name>!", an opener when the intent calls for one, at most five
  sentences in all, at most one offer, one closing line.
- email: "Dear <name>," then paragraphs (facts, help center, offers, closing) and a
  sign-off; up to six body sentences and three offers.
- social: a public channel, so no personal details at all: no name, no order ids,
  dates or amounts (each fact sentence has a public variant, or is left out), no
  offers, at most one body sentence, an invitation to continue by direct message,
  and at most 280 characters.
When the route is "human", the answer is the greeting, the opener and the handoff
notice only: the colleague who takes over answers the substance.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import replace

from server.errors import InvalidInput
from server.generation.base import CHANNELS, Chunk, Grounding
from server.generation.facts_text import Line, offer_lines
from server.generation.plans import Budget, Plan, plan_for

_BUDGETS = {"chat": Budget(2, 1), "email": Budget(4, 3), "social": Budget(1, 1)}
_CHAT_MAX_SENTENCES = 5
_EMAIL_MAX_BODY = 6
_EMAIL_MAX_OFFERS = 3
_SOCIAL_MAX_CHARS = 280
_SOCIAL_DM = "Please send us a direct message so we can help with the details."
_SOCIAL_HANDOFF = "Please send us a direct message and a colleague will take it from there."
_DEFAULT_HANDOFF = "I'm passing this conversation to a colleague, who will reply here."
_WORD = re.compile(r"\S+\s*")
_SPACES = re.compile(r"\s+")


def _greeting(text: str) -> Line:
    return Line(text, role="greeting")


def _closing(text: str, section: int = 0) -> Line:
    return Line(text, role="closing", section=section)


def _handoff(g: Grounding) -> Line:
    return Line(g.handoff_message.strip() or _DEFAULT_HANDOFF, role="handoff")


def _clean_name(name: str) -> str:
    return _SPACES.sub(" ", name).strip()


class GroundedComposer:
    """Answers from facts and passages with intent-specific plans; implements Generator."""

    name = "grounded-composer"
    version = "1"

    def __init__(
        self,
        words_per_chunk: int = 0,
        sign_off: str = "Customer Care",
        max_refund_statement: float | None = None,
    ) -> None:
        """`max_refund_statement`: the policy's ceiling (promises.max_refund_statement);
        refund amounts above it are left out of sentences. None states every amount."""
        if words_per_chunk < 0:
            raise InvalidInput("words_per_chunk must be >= 0 (0 = one chunk per sentence)")
        self.words_per_chunk = words_per_chunk
        self.sign_off = sign_off
        self.max_refund_statement = max_refund_statement

    async def stream(
        self, g: Grounding, cancel: threading.Event | None = None
    ) -> AsyncIterator[Chunk]:
        """Yield the answer chunk by chunk; stops as soon as `cancel` is set."""
        # Composing is a few microseconds of string work, cheaper than a thread hop.
        chunks = self.compose(g)
        for chunk in chunks:
            if cancel is not None and cancel.is_set():
                return
            yield chunk
            await asyncio.sleep(0)  # let the guard and other requests run between chunks

    def compose(self, g: Grounding) -> list[Chunk]:
        """The whole answer as chunks; concatenated chunk texts form the answer."""
        if g.channel not in CHANNELS:
            raise InvalidInput(f"unknown channel {g.channel!r}; expected one of {CHANNELS}")
        budget = replace(_BUDGETS[g.channel], max_refund_amount=self.max_refund_statement)
        plan = plan_for(g, budget)
        if g.channel == "chat":
            lines, seps = self._chat(g, plan), None
        elif g.channel == "email":
            lines, seps = self._email(g, plan)
        else:
            lines, seps = self._social(g, plan), None
        return self._chunks(lines, seps or [" "] * (len(lines) - 1))

    def _chat(self, g: Grounding, plan: Plan) -> list[Line]:
        first = _clean_name(g.customer_name).split(" ")[0]
        head = [_greeting(f"Hi {first}!" if first else "Hi there!")]
        if plan.opener:
            head.append(_greeting(plan.opener))
        if g.route == "human":
            return [*head, _handoff(g)]
        tail = [_closing(plan.closing)] if plan.closing else []
        room = _CHAT_MAX_SENTENCES - len(head) - len(tail)
        body = plan.body[: max(room, 1)]
        offers = offer_lines(g.offers, min(1, room - len(body)), section=2)
        return head + body + offers + tail

    def _email(self, g: Grounding, plan: Plan) -> tuple[list[Line], list[str]]:
        name = _clean_name(g.customer_name)
        lines = [_greeting(f"Dear {name}," if name else "Hello,")]
        if plan.opener:
            lines.append(_greeting(plan.opener))
        if g.route == "human":
            lines.append(_handoff(g))
        else:
            lines += plan.body[:_EMAIL_MAX_BODY]
            lines += offer_lines(g.offers, _EMAIL_MAX_OFFERS, section=2)
            if plan.closing:
                lines.append(_closing(plan.closing, section=3))
        lines.append(_closing(f"Kind regards,\n{self.sign_off}", section=4))
        # The salutation stands alone; a blank line wherever the section changes.
        seps = ["\n\n"] + [
            " " if prev.section == cur.section else "\n\n"
            for prev, cur in itertools.pairwise(lines[1:])
        ]
        return lines, seps

    def _social(self, g: Grounding, plan: Plan) -> list[Line]:
        head = [_greeting("Hi there!")]
        if plan.opener:
            head.append(_greeting(plan.opener))
        if g.route == "human":
            return [*head, Line(_SOCIAL_HANDOFF, role="handoff")]
        # Only one sentence fits: the line that answers the intent if it can be public.
        ranked = sorted(plan.body, key=lambda ln: not ln.key)
        public = [
            Line(ln.public, ln.source_ids, ln.source_kinds, ln.role, ln.public)
            for ln in ranked
            if ln.public is not None
        ][:1]
        dm = [_closing(_SOCIAL_DM)]
        if sum(len(ln.text) + 1 for ln in head + public + dm) > _SOCIAL_MAX_CHARS:
            public = []
        return head + public + dm

    def _chunks(self, lines: list[Line], seps: list[str]) -> list[Chunk]:
        chunks = []
        for i, line in enumerate(lines):
            text = line.text + (seps[i] if i < len(seps) else "")
            pieces = [text]
            if self.words_per_chunk:
                words = _WORD.findall(text)
                pieces = [
                    "".join(words[j : j + self.words_per_chunk])
                    for j in range(0, len(words), self.words_per_chunk)
                ]
            for piece in pieces:
                chunks.append(Chunk(piece, line.source_ids, line.source_kinds, line.role))
        return chunks
