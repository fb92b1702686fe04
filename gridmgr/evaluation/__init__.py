"""综合评价: indicators, composite scores and grades for regions, departments, categories,
and people.

``periods`` turns "2026-11" or explicit dates into an instant range in the city's time zone,
``indicators`` counts steps and rates in PostgreSQL from ``case_history`` and ``cases``,
``scores`` turns rates into 0-100 scores and A-E grades. Definitions: docs/evaluation.md.
"""
