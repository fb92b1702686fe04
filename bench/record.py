"""Where benchmark figures go: one history file per benchmark, ``bench/results/<name>.json``.

Each run appends one entry with its date, the commit it measured and the machine's yardstick
(requests per second of a Flask "hello" view served in process), so that figures taken on
different days, on faster or slower machines, can be compared. The files are kept in git:
they are the project's measured history.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def flask_hello_rate(seconds: float = 1.0) -> float:
    """Requests per second of a one-line Flask view through the test client, in this process."""
    app = Flask("yardstick")
    app.add_url_rule("/", "hello", lambda: "hello")
    client = app.test_client()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        client.get("/")
        count += 1
    return round(count / elapsed)


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def record(name: str, figures: dict) -> Path:
    """Append ``figures`` with date, commit and yardstick to ``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history.append({
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "flask_hello_per_s": flask_hello_rate()},
        "figures": figures,
    })
    path.write_text(json.dumps(history, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {path.relative_to(ROOT)}")
    return path
