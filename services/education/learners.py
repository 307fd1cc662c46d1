"""The education service's side of the shared identity: registry events → learners.

Learners are residents. The registry's `resident.*` events (shared.events.residents) keep a
`learners` document per resident id with the name and status the registry last published
(class rosters show them), and a merge moves the retired id's enrollments and progress
records to the surviving id:

- an enrollment becomes the survivor's (same class and role); when the survivor already has
  one in that class, theirs stays (made active if either was) and the retired one goes;
- a progress record becomes the survivor's; when both have one for the same resource, the
  further one wins (completion, then progress, then the latest activity), keeping the best
  score of the two.

Idempotent (the feed is at-least-once): a snapshot whose `version` the learner already has
is skipped; a merge is re-run safely, because once moved nothing is left under the retired
id. Each batch of moves is one atomic write; a crash between batches resumes on replay.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from services.education.repository import ENROLLMENTS, LEARNERS, PROGRESS, EducationRepository
from services.education.roster import enrollment_id, progress_id
from services.education.service import now_iso
from shared.events import FeedEvent
from shared.events.residents import ResidentMerged, ResidentSnapshot, resident_event_or_skip
from shared.storage import Delete, Eq, Query, WriteOp

logger = logging.getLogger(__name__)

MOVE_BATCH = 50
_COMPLETION = {"not-started": 0, "in-progress": 1, "completed": 2}


def further(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Of two progress records on one resource, the further one (with the best score)."""

    def rank(p: Mapping[str, Any]) -> tuple[int, float, str]:
        return (_COMPLETION[p["completion"]], float(p["progress"]), p["last_activity"])

    best = dict(a if rank(a) >= rank(b) else b)
    scores = [s for s in (a.get("score"), b.get("score")) if s is not None]
    best["score"] = max(scores) if scores else None
    best["last_activity"] = max(a["last_activity"], b["last_activity"])
    return best


class LearnerSync:
    """The feed handler for the registry's events (idempotent: safe to replay)."""

    def __init__(self, repo: EducationRepository) -> None:
        self.repo = repo

    async def handle(self, event: FeedEvent) -> None:
        """Apply one registry event."""
        parsed = resident_event_or_skip(event)
        if parsed is None:
            return  # not a resident event
        if isinstance(parsed, ResidentMerged):
            await self.merge(parsed)
        else:
            await self.snapshot(parsed)

    async def snapshot(self, s: ResidentSnapshot) -> None:
        """Keep the learner's name and status as the registry has them now."""
        current = await self.repo.get(LEARNERS, s.resident_id)
        if current is not None and current.body["version"] >= s.version:
            return
        body = {
            "id": s.resident_id,
            "version": s.version,
            "name": {"zh": s.name.zh, "latin": s.name.latin},
            "status": s.status,
            "merged_into": (current.body.get("merged_into") if current else None),
            "updated_at": now_iso(),
        }
        if body["merged_into"]:
            body["status"] = "merged"  # a retired id stays retired whatever else arrives
        await self.repo.write([await self.repo.put_op(LEARNERS, s.resident_id, body)])

    async def merge(self, m: ResidentMerged) -> None:
        """Retire the learner, then move their enrollments and progress to the survivor.

        The retired learner is marked first: from then on new enrollments and progress
        under the retired id go to the survivor, so nothing lands behind the moves. The
        moves run on every delivery (a replay after a crash finishes them)."""
        current = await self.repo.get(LEARNERS, m.resident_id)
        if current is None or current.body.get("merged_into") != m.into:
            body = {
                **(current.body if current else {"id": m.resident_id, "name": None}),
                "version": max(m.version, current.body["version"] if current else 0),
                "status": "merged",
                "merged_into": m.into,
                "updated_at": now_iso(),
            }
            await self.repo.write([await self.repo.put_op(LEARNERS, m.resident_id, body)])
            logger.info("learner %s merged into %s", m.resident_id, m.into)
        while await self._move_batch(m.resident_id, m.into):
            pass

    async def _move_batch(self, retired: str, into: str) -> bool:
        """Move up to MOVE_BATCH records in one atomic write; False when none are left."""
        ops: list[WriteOp] = []
        q = Query(where=[Eq("user", retired), Eq("role", "learner")], limit=MOVE_BATCH)
        for e in (await self.repo.search(ENROLLMENTS, q)).items:
            new_id = enrollment_id(e.body["class"], "learner", into)
            theirs = await self.repo.get(ENROLLMENTS, new_id)
            body = dict(theirs.body) if theirs else {**e.body, "id": new_id, "user": into}
            if e.body["status"] == "active":
                body["status"] = "active"
            body["updated_at"] = now_iso()
            ops += [await self.repo.put_op(ENROLLMENTS, new_id, body), Delete(ENROLLMENTS, e.id)]
        q = Query(where=[Eq("learner", retired)], limit=MOVE_BATCH)
        for p in (await self.repo.search(PROGRESS, q)).items:
            new_id = progress_id(into, p.body["resource"])
            theirs = await self.repo.get(PROGRESS, new_id)
            moved = {**p.body, "id": new_id, "learner": into}
            body = further(theirs.body, moved) if theirs else moved
            body.update(id=new_id, learner=into)
            ops += [await self.repo.put_op(PROGRESS, new_id, body), Delete(PROGRESS, p.id)]
        if not ops:
            return False
        await self.repo.write(ops)
        return True
