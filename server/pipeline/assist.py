"""Assist mode per channel: an answer Respond would send on its own becomes a draft.

`channels.<name>.mode = "assist"` keeps the stream as it is (the agent's desk shows it
live) but marks the call's route "draft" and stores the answer in the drafts table,
where an agent accepts, edits or rejects it (Agent.ListDrafts / ReviewDraft). Answers
that go to a human anyway (route "human") stay handoffs.
"""

from __future__ import annotations

from server.config import ChannelsConfig
from server.records.drafts import Draft
from server.records.types import DecisionRecord

DRAFT_ROUTE = "draft"


def route_for(route: str, channel: str, channels: ChannelsConfig) -> str:
    return DRAFT_ROUTE if route == "automated" and channels.mode(channel) == "assist" \
        else route


def draft_of(rec: DecisionRecord) -> Draft:
    return Draft(decision_id=rec.decision_id, conversation_id=rec.conversation_id,
                 customer_id=rec.customer_id, intent=rec.intent, channel=rec.channel,
                 created_at=rec.finished_at or rec.started_at, text=rec.final_text)
