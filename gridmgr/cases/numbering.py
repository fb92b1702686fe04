"""Case numbers: the day a case was reported, in the city's time zone, then its id.

``20261126000042`` is case 42, reported on 26 November 2026: at least six digits of id, more
once ids outgrow them. The number is taken by the statement that stores the case, so a
report that stores nothing leaves no gap.
"""

from __future__ import annotations


def case_code_sql(case_id: str, tz: str = ":tz") -> str:
    """SQL for the number of the new case whose id is the SQL expression ``case_id``; ``tz``
    is SQL for the time zone of the day (the deployment's, ``GRIDMGR_TIMEZONE``)."""
    return (f"to_char(now() AT TIME ZONE {tz}, 'YYYYMMDD') "
            f"|| lpad({case_id}::text, greatest(6, length({case_id}::text)), '0')")
