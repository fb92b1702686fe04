"""Benchmark: the phone app (``/m/``) in headless Chromium (Debian's) with a phone's viewport.

Builds the small test city in its own database, starts ``gridmgr serve`` and measures:

- first-visit bytes: every HTML, script, style sheet, font, icon and manifest the page fetches
  on a first visit and every file of the service worker's app shell, each once (map tiles and
  API answers left out), counted as gridmgr sends them to Chromium (``Accept-Encoding: gzip,
  deflate, br, zstd``), uncompressed, and gzip level 6 (the earlier yardstick);
- first usable screen under Chromium's "Slow 3G" (DevTools preset, set through CDP
  ``Network.emulateNetworkConditions``: 400 kbit/s (50 kB/s) each way and the preset's
  2,000 ms request latency, which is its 400 ms round trip times DevTools' factor of 5):
  seconds from navigation to the report form on screen with its send button (a citizen can
  take the photo, place it, search a category, write and send), then to its map drawn and to
  the category catalogue loaded, on a first visit; and to the form on a repeat visit (the
  service worker installed); three loads each;
- a repeat visit with the network off: whether the report form opens, and in how long.

    .venv/bin/python bench/mobile_app.py
"""

from __future__ import annotations

import gzip
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from record import record  # noqa: E402
from wall import CHROMIUM, CHROMIUM_FLAGS, database_url, make_app, serve  # noqa: E402

from gridmgr.extensions import db  # noqa: E402

DB_NAME = "gridmgr_bench_mobile"
SW = ROOT / "web" / "static" / "mobile" / "sw.js"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True, "locale": "zh-CN"}
# DevTools' preset (front_end/core/sdk/NetworkManager.ts): 500 kbit/s × 0.8 each way, 400 ms × 5.
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 50_000,
           "uploadThroughput": 50_000}
BROWSER_ENCODINGS = "gzip, deflate, br, zstd"
SHELL_TYPES = {"document", "script", "stylesheet", "font", "image", "manifest", "other"}
BUDGET_BYTES = 250_000
LOADS = 3


def build_city(url: str) -> None:
    from cityfixtures import build_city as build
    from flask_migrate import upgrade

    app = make_app(url)
    with app.app_context():
        upgrade()
        db.session.execute(text("TRUNCATE cities, users, departments, categories, "
                                "category_classes, cases, reports RESTART IDENTITY CASCADE"))
        db.session.commit()
        build()


def shell_ready(page) -> None:
    """Wait until the service worker is active and its cache holds the app shell (through
    ``evaluate``: ``wait_for_function`` takes a pending promise for a true value)."""
    ready = page.evaluate("""Promise.race([navigator.serviceWorker.ready.then(() =>
        new Promise(resolve => { const check = () => caches.keys().then(keys =>
          keys.some(k => k.endsWith('-shell')) ? resolve(true) : setTimeout(check, 100));
        check(); })), new Promise(resolve => setTimeout(() => resolve(false), 120000))])""")
    if not ready:
        raise TimeoutError("the service worker did not install the app shell in 120 s")


def first_visit_bytes(browser, base: str) -> dict:
    context = browser.new_context(**PHONE)
    fetched: list[str] = []

    def keep(request):
        path = request.url[len(base):]
        if (request.url.startswith(base) and request.resource_type in SHELL_TYPES
                and "/tiles/" not in path and not path.startswith("/api/")):
            fetched.append(request.url)
    context.on("request", keep)
    page = context.new_page()
    page.goto(base + "/m/")
    page.wait_for_selector("#report-form")
    shell_ready(page)
    page.wait_for_timeout(1000)  # the shell's last files
    context.close()
    # The service worker's own downloads (the app shell it keeps) are not all reported as
    # requests: its list is added, each file counted once.
    shell = re.findall(r'"(/[^"]+)"', SW.read_text().split("SHELL_FILES = [", 1)[1].split("];")[0])
    fetched = list(dict.fromkeys(fetched + [base + path for path in shell]))
    served = compressed = sent = 0
    encodings = set()
    for url in fetched:
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = answer.read()
        served += len(body)
        compressed += len(gzip.compress(body, compresslevel=6))
        request = urllib.request.Request(url, headers={"Accept-Encoding": BROWSER_ENCODINGS})
        with urllib.request.urlopen(request, timeout=30) as answer:
            sent += len(answer.read())  # urllib leaves the body as it came
            encodings.add(answer.headers.get("Content-Encoding") or "identity")
    return {"requests": len(fetched), "bytes_sent": sent, "encodings": sorted(encodings),
            "bytes_uncompressed": served, "bytes_gzip": compressed,
            "budget_bytes": BUDGET_BYTES, "within_budget": sent <= BUDGET_BYTES}


def usable_after(page, base: str, then: tuple[str, ...] = ()) -> list[float]:
    """Seconds from navigation to the report form, then to each of ``then`` (conditions in
    the page's JavaScript)."""
    start = time.perf_counter()
    page.goto(base + "/m/", wait_until="commit", timeout=120_000)
    page.wait_for_selector("#report-form #send", timeout=120_000)
    seconds = [time.perf_counter() - start] + [None] * len(then)
    while None in seconds:
        met = page.evaluate(f"[{', '.join(f'Boolean({c})' for c in then)}]")
        now = time.perf_counter() - start
        for n, true in enumerate(met, start=1):
            if true and seconds[n] is None:
                seconds[n] = now
        if now > 120:
            raise TimeoutError(f"still waiting for {then}")
        time.sleep(0.05)
    return seconds


# The map drawn on the report form, and the catalogue the category search reads.
MAP_SHOWN = "document.querySelector('#report-map.leaflet-container .leaflet-marker-icon')"
CATALOGUE_LOADED = ("performance.getEntriesByType('resource').some(e => "
                    "e.name.includes('/api/v1/categories') && e.responseEnd > 0)")


def slow_3g(browser, base: str) -> dict:
    first, shown, catalogue, repeat = [], [], [], []
    for _ in range(LOADS):
        context = browser.new_context(**PHONE)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", SLOW_3G)
        form, catalogue_at, map_at = usable_after(page, base, then=(CATALOGUE_LOADED, MAP_SHOWN))
        first.append(form)
        catalogue.append(catalogue_at)
        shown.append(map_at)
        shell_ready(page)
        repeat.append(usable_after(page, base)[0])
        context.close()

    def figures(values):
        return [round(v, 2) for v in values], round(statistics.median(values), 2)

    (first_s, first_m), (shown_s, shown_m) = figures(first), figures(shown)
    (catalogue_s, catalogue_m), (repeat_s, repeat_m) = figures(catalogue), figures(repeat)
    return {"network": "Slow 3G: 2000 ms latency, 50 kB/s down and up",
            "first_visit_s": first_s, "first_visit_median_s": first_m,
            "first_visit_map_s": shown_s, "first_visit_map_median_s": shown_m,
            "first_visit_catalogue_s": catalogue_s,
            "first_visit_catalogue_median_s": catalogue_m,
            "repeat_visit_s": repeat_s, "repeat_visit_median_s": repeat_m}


def offline_repeat(browser, base: str) -> dict:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(base + "/m/")
    page.wait_for_selector("#report-form")
    shell_ready(page)
    page.close()
    context.set_offline(True)
    page = context.new_page()
    try:
        seconds = usable_after(page, base)[0]
        opened = True
    except Exception:  # noqa: BLE001 - not opening is the figure
        seconds, opened = None, False
    context.close()
    return {"opens": opened, "seconds": None if seconds is None else round(seconds, 2)}


def main() -> dict:
    from playwright.sync_api import sync_playwright

    url = database_url(DB_NAME, create=True)
    build_city(url)
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-mobile-"))
    (home / "config.py").write_text("RATELIMIT_ENABLED = False\n")
    process, base = serve(url, home)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            figures = {"first_visit": first_visit_bytes(browser, base),
                       "slow_3g": slow_3g(browser, base),
                       "offline_repeat_visit": offline_repeat(browser, base)}
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    return figures


if __name__ == "__main__":
    import json

    result = main()
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print("recorded in", record("mobile_app", result))
