"""Feedback on an earlier decision: validated, free text redacted, stored against it."""

from __future__ import annotations

import msgspec

from server.errors import InvalidInput
from server.governance.pii import PiiDetector
from server.records.base import Records
from server.records.store import feedback_id, utcnow
from server.records.types import Feedback

MAX_TEXT = 4000


class FeedbackInput(msgspec.Struct, frozen=True):
    decision_id: str
    csat: int = 0  # 1-5; 0 = not given
    nps: int | None = None  # 0-10
    resolved: bool = False
    converted_order_id: str = ""
    text: str = ""


class FeedbackService:
    def __init__(self, records: Records, detector: PiiDetector) -> None:
        self._records = records
        self._detector = detector

    async def submit(self, fb: FeedbackInput) -> str:
        if not fb.decision_id:
            raise InvalidInput("decision_id is empty")
        if fb.csat and not 1 <= fb.csat <= 5:
            raise InvalidInput("csat must be 1-5 (0 = not given)")
        if fb.nps is not None and not 0 <= fb.nps <= 10:
            raise InvalidInput("nps must be 0-10")
        if len(fb.text) > MAX_TEXT:
            raise InvalidInput(f"text is over {MAX_TEXT} characters")
        if not (fb.csat or fb.nps is not None or fb.resolved or fb.converted_order_id
                or fb.text.strip()):
            raise InvalidInput("feedback has no content")
        record = Feedback(
            feedback_id="",
            decision_id=fb.decision_id, csat=fb.csat, nps=fb.nps, resolved=fb.resolved,
            converted_order_id=fb.converted_order_id.strip(),
            text=self._detector.redact(fb.text).text if fb.text else "",
            created_at=utcnow(),
        )
        # The same feedback again (a retried call, another replica) is the same record.
        record.feedback_id = feedback_id(record)
        await self._records.add_feedback(record)  # NotFound for an unknown decision
        return record.feedback_id
