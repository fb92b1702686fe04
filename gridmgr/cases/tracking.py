"""What the holder of an anonymous report's tracking token may see and do without an account:
the case's public photos and rating beside its public status, and rating the case once it is
closed.

The token stands for the reporter: rating through it is the workflow's ``rate`` step (the
table's source states, its history row and live event, written by the one writer), with no
actor and the report's token as the proof of who rates.
"""

from __future__ import annotations

from sqlalchemy import text

from gridmgr.cases.events import step_parameters
from gridmgr.cases.intake import hash_token
from gridmgr.cases.workflow import STEPS, case_after, outcome, read_case, step_answer, write_step
from gridmgr.errors import Conflict, InvalidInput, NotFound
from gridmgr.extensions import db

MAX_TOKEN_LENGTH = 128


def tracked_case_id(token: str) -> int:
    """The case of the report with this tracking token (404 ``report_not_found``)."""
    case_id = None
    if len(token) <= MAX_TOKEN_LENGTH:
        case_id = db.session.scalar(text(
            "SELECT case_id FROM reports WHERE tracking_token_hash = :h"),
            {"h": hash_token(token)})
    if case_id is None:
        raise NotFound("No report has this tracking token.", code="report_not_found")
    return case_id


def public_photos(case_id: int) -> list[dict]:
    """The case's public photos (before and after the work), oldest first, as public copies."""
    rows = db.session.execute(text("""
        SELECT sha256, stage, width, height FROM photos
        WHERE case_id = :id AND public ORDER BY id"""), {"id": case_id}).all()
    return [{"sha256": r.sha256, "stage": r.stage, "width": r.width, "height": r.height,
             "url": f"/api/v1/photos/{r.sha256}",
             "thumbnail_url": f"/api/v1/photos/{r.sha256}?size=thumb"} for r in rows]


def carried_by(token: str, public_url: str) -> dict | None:
    """When the tracked report was merged into another case: that case's code, the code of the
    case it was first reported in, and the link this token follows it by now."""
    row = db.session.execute(text("""
        SELECT carrier.code, merged.code AS merged_code
        FROM reports r
        JOIN case_history h ON h.action = 'merge' AND h.at >= r.created_at
         AND h.details -> 'reports' @> to_jsonb(r.id)
        JOIN cases merged ON merged.id = h.case_id
        JOIN cases carrier ON carrier.id = CAST(h.details ->> 'duplicate_of' AS bigint)
        WHERE r.tracking_token_hash = :h
        ORDER BY h.id DESC LIMIT 1"""), {"h": hash_token(token)}).one_or_none()
    if row is None:
        return None
    return {"code": row.code, "merged_from": row.merged_code,
            "tracking_link": f"{public_url.rstrip('/')}/api/v1/reports/track/{token}"}


def rating_of(case_id: int) -> int | None:
    return db.session.scalar(text("SELECT rating FROM cases WHERE id = :id"), {"id": case_id})


def rate_tracked(token: str, rating: int, note: str | None = None) -> dict:
    """Rate the tracked report's case (1–5), once, after it is closed: 409 ``conflict`` before,
    409 ``already_rated`` after a rating, 422 ``bad_rating`` outside 1–5."""
    case_id = tracked_case_id(token)
    if not 1 <= rating <= 5:
        raise InvalidInput("A rating is a whole number from 1 to 5.", code="bad_rating")
    case = read_case(case_id)
    step = STEPS["rate"]
    if case.state not in step.sources:
        raise Conflict(f"Case {case.code} is {case.state}; it can be rated once it is closed.",
                       code="conflict", state=case.state, action="rate")
    if case.rating is not None:
        raise Conflict(f"Case {case.code} is already rated; a rating cannot be changed.",
                       code="already_rated", rating=case.rating)
    target, recorded = outcome(step, case)
    values = {"rating": rating, "rating_note": note}
    after = case_after(case, target, values)
    written = write_step(case, target, values, [step_parameters(
        after, action=recorded, from_state=case.state, note=note,
        details={"rating": rating, "by": "tracking_token"})], "AND rating IS NULL")
    if written is None:
        db.session.rollback()
        raise Conflict(f"Case {case.code} was rated or changed meanwhile; reload it.",
                       code="conflict")
    db.session.commit()
    return step_answer(None, after, recorded, written)
