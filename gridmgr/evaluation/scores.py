"""Composite scores (0-100) and grades (A-E) from indicator rates.

A score is ``100 × Σ weight × component / Σ weight`` over its components, each a share in
[0, 1]. The defaults (:data:`DEFAULT_WEIGHTS`):

- inspector (监督员): 有效上报率 40 %, (1 − 漏报率) 20 %, 按期核实率 20 %, 按期核查率 20 %.
- department (专业部门): case-load 10 %, 结案率 30 %, 按期处置率 30 %, (1 − 返工率) 30 %;
  case-load = the department's handled cases / the most handled by any department in the
  same table (so the busiest department has 1).
- region (区域): 有效上报率 20 %, case-load 10 %, 结案率 35 %, 按期结案率 35 %; case-load =
  the region's reported cases / the most reported by any region in the same table (finding
  problems is the point of supervision, 监督).

A component whose rate is ``None`` (no data) is left out and the other weights are scaled up;
when the components left carry less than half of the weight, the score is ``None`` (too
little to judge). 1 − 返工率 is floored at 0. Grades: A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, E below.

Weights and bands are configuration: ``GRIDMGR_SCORE_WEIGHTS`` in app.config (a dict) or the
environment (JSON), merged key by key over the defaults, e.g.
``{"department": {"case_load": 0.2, "closing_rate": 0.3, ...}, "grades": [["A", 85], ...]}``.
"""

from __future__ import annotations

import json
import os

from flask import current_app

from gridmgr.errors import InvalidInput

DEFAULT_WEIGHTS: dict = {
    "inspector": {"valid_report_rate": 0.4, "not_missed": 0.2,
                  "verified_on_time_rate": 0.2, "checked_on_time_rate": 0.2},
    "department": {"case_load": 0.1, "closing_rate": 0.3, "handled_on_time_rate": 0.3,
                   "no_rework": 0.3},
    "region": {"valid_report_rate": 0.2, "case_load": 0.1, "closing_rate": 0.35,
               "closed_on_time_rate": 0.35},
    "grades": [["A", 90], ["B", 75], ["C", 60], ["D", 40], ["E", 0]],
}
SUBJECTS = ("inspector", "department", "region")


def weights() -> dict:
    """The configured weights and grade bands, merged over :data:`DEFAULT_WEIGHTS`."""
    configured = current_app.config.get("GRIDMGR_SCORE_WEIGHTS")
    if configured is None and os.environ.get("GRIDMGR_SCORE_WEIGHTS"):
        configured = os.environ["GRIDMGR_SCORE_WEIGHTS"]
    if isinstance(configured, str):
        try:
            configured = json.loads(configured)
        except ValueError:
            raise InvalidInput("GRIDMGR_SCORE_WEIGHTS is not valid JSON.",
                               code="bad_weights") from None
    merged = {key: (dict(value) if isinstance(value, dict) else list(value))
              for key, value in DEFAULT_WEIGHTS.items()}
    for key, value in (configured or {}).items():
        if key == "grades":
            merged["grades"] = sorted(([str(g), float(low)] for g, low in value),
                                      key=lambda band: -band[1])
        elif key in SUBJECTS:
            merged[key] = dict(value)
    return merged


def grade(score: float | None, bands: list | None = None) -> str | None:
    """The letter of the first band whose lower bound the score reaches (None for no score)."""
    if score is None:
        return None
    for letter, low in bands or weights()["grades"]:
        if score >= low:
            return letter
    return (bands or weights()["grades"])[-1][0]


def score(components: dict[str, float | None], subject_weights: dict[str, float]) -> float | None:
    """100 × the weighted mean of the available components, rounded to 2 decimals."""
    total = sum(subject_weights.values())
    used = {name: w for name, w in subject_weights.items() if components.get(name) is not None}
    if total <= 0 or sum(used.values()) < total / 2:
        return None
    value = sum(w * components[name] for name, w in used.items()) / sum(used.values())
    return round(100 * value, 2)


def share_of_busiest(value: int, busiest: int) -> float | None:
    """A case-load component: ``value`` relative to the largest in the table."""
    return None if busiest <= 0 else value / busiest


def inspector_components(rates: dict, missed_rate: float | None) -> dict:
    """The inspector score's components from a person's rates and their 漏报率."""
    return {"valid_report_rate": rates["valid_report_rate"],
            "not_missed": None if missed_rate is None else 1 - missed_rate,
            "verified_on_time_rate": rates["verified_on_time_rate"],
            "checked_on_time_rate": rates["checked_on_time_rate"]}


def department_components(rates: dict, case_load: float | None) -> dict:
    """The department score's components."""
    rework = rates["rework_rate"]
    return {"case_load": case_load, "closing_rate": rates["closing_rate"],
            "handled_on_time_rate": rates["handled_on_time_rate"],
            "no_rework": None if rework is None else max(0.0, 1 - rework)}


def region_components(rates: dict, case_load: float | None) -> dict:
    """The region score's components."""
    return {"valid_report_rate": rates["valid_report_rate"], "case_load": case_load,
            "closing_rate": rates["closing_rate"],
            "closed_on_time_rate": rates["closed_on_time_rate"]}
