"""Benchmark: ``gridmgr report`` for one month of a synthetic city with many cases.

The city and its cases are those of ``bench/indicators.py`` (1,000 unit grids, 20
categories, 10 departments, 100 inspectors; ``--cases`` cases spread over the year before
2026-12-01 with full histories), in its own database ``gridmgr_bench_report``. The report
for November 2026 is then made ``--runs`` times: gathering the numbers (six months of city
totals, the rankings, the grids' counts and shapes, the daily flow, the overdue list),
drawing the HTML with its charts, and printing the PDF, each timed. Prints the figures and
writes ``bench/results/report.json``.

    .venv/bin/python bench/report.py --cases 100000
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_indicators", ROOT / "bench" / "indicators.py")
world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(world)
world.NAME = "gridmgr_bench_report"

from flask_migrate import upgrade  # noqa: E402
from record import record  # noqa: E402
from weasyprint import HTML  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.reports.monthly import monthly_report  # noqa: E402
from gridmgr.reports.rendering import render_html  # noqa: E402


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = world._database()
    app = create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                      "GRIDMGR_HOME": tempfile.mkdtemp(prefix="gridmgr-bench-"),
                      "SECRET_KEY": "bench-secret-key-long-enough-for-hs256",
                      "RATELIMIT_ENABLED": False})
    out = Path(tempfile.mkdtemp(prefix="gridmgr-report-")) / "report.pdf"
    samples: dict[str, list[float]] = {"gather_s": [], "html_s": [], "pdf_s": [], "total_s": []}
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        print(f"building {args.cases:,} cases with their histories ...", flush=True)
        built = world.build(args.cases)
        for _ in range(args.runs):
            began = time.perf_counter()
            report = monthly_report(1, "2026-11")
            gathered = time.perf_counter()
            html = render_html(report)
            drawn = time.perf_counter()
            HTML(string=html).write_pdf(out)
            printed = time.perf_counter()
            for name, seconds in (("gather_s", gathered - began), ("html_s", drawn - gathered),
                                  ("pdf_s", printed - drawn), ("total_s", printed - began)):
                samples[name].append(round(seconds, 2))
            print("  " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in samples.items()), flush=True)
    from pypdf import PdfReader

    results = {"cases": args.cases, "cases_in_month": report.totals["counts"]["reported"],
               "grids": len(report.grids), "overdue_listed": report.overdue_total,
               "build_seconds": round(built, 1), "runs": args.runs,
               "median": {k: sorted(v)[len(v) // 2] for k, v in samples.items()},
               "samples": samples, "pdf_pages": len(PdfReader(out).pages),
               "pdf_kib": out.stat().st_size // 1024,
               "load_average_1m": round(os.getloadavg()[0], 1),
               "python": platform.python_version(), "machine": platform.machine()}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    record("report", results)
    median = results["median"]
    print(f"{args.cases:,} cases ({results['cases_in_month']:,} in 2026-11, "
          f"{results['grids']:,} grids): report in {median['total_s']:.1f} s median "
          f"(numbers {median['gather_s']:.1f} s, HTML and charts {median['html_s']:.1f} s, "
          f"PDF {median['pdf_s']:.1f} s); {results['pdf_pages']} pages, "
          f"{results['pdf_kib']} KiB; load average {results['load_average_1m']}; "
          "written to bench/results/report.json")
    return results


if __name__ == "__main__":
    main()
