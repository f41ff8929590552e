"""protobuf <-> draft conversions for the Agent service (assist mode)."""

from __future__ import annotations

from aftercare.v1 import agent_pb2
from server.records.drafts import Draft, ReviewRates


def draft_pb(d: Draft) -> agent_pb2.Draft:
    return agent_pb2.Draft(
        decision_id=d.decision_id, conversation_id=d.conversation_id,
        customer_id=d.customer_id, intent=d.intent, channel=d.channel, state=d.state,
        text=d.text, edited_text=d.edited_text, agent_id=d.agent_id, created_at=d.created_at,
        reviewed_at=d.reviewed_at,
    )


def rates_pb(r: ReviewRates) -> agent_pb2.DraftReviewRates:
    return agent_pb2.DraftReviewRates(
        intent=r.intent, reviewed=r.reviewed, accepted=r.accepted, edited=r.edited,
        rejected=r.rejected, acceptance_rate=r.acceptance_rate, edit_rate=r.edit_rate,
    )
