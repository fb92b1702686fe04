"""Debian's Chromium for the stories told in a real browser: where it is, how it is launched,
the skip mark when it is missing, a phone's screen, and the checks every such story makes
(nothing fetched from another host, no console error, script error or failed answer)."""

from __future__ import annotations

import re
import shutil
import time
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
LAUNCH = {"executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True}

chromium = pytest.mark.skipif(not shutil.which(CHROMIUM),
                              reason="Debian's chromium: scripts/install-system-deps.sh "
                                     "--browser (make test runs it)")


@pytest.fixture(name="browser")
def browser_fixture():
    """A headless Debian Chromium, closed after the story."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(**LAUNCH)
        yield launched
        launched.close()


def refuse_other_hosts(context, server) -> list[str]:
    """Fail and record every request of ``context`` to a host other than ``server``'s; the
    list returned fills as the story runs."""
    host = urlsplit(server.url).netloc
    foreign: list[str] = []

    def refuse(route):
        foreign.append(route.request.url)
        route.abort()
    # A pattern, not a Python predicate: a predicate makes Playwright hold every request until
    # the test's thread next calls into Playwright, so a send made while the test waits on the
    # database would hang.
    context.route(re.compile(rf"^(?!{re.escape(server.url)}/)[a-z]+://"), refuse)
    context.on("request", lambda r: urlsplit(r.url).netloc != host
               and not r.url.startswith(("data:", "blob:")) and foreign.append(r.url))
    return foreign


def record_problems(page, problems: list[str], allowed: tuple[int, ...] = (),
                    console: bool = True) -> list[str]:
    """Record on ``problems`` every script error, failed answer and (with ``console``) console
    error of ``page``. An answer with an ``allowed`` status is a refusal the story provokes,
    and the console's line about it, like its line about being offline, is no problem."""
    def console_error(message) -> None:
        if message.type != "error" or "net::ERR_INTERNET_DISCONNECTED" in message.text:
            return
        if not any(f"status of {status}" in message.text for status in allowed):
            problems.append(message.text)

    if console:
        page.on("console", console_error)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: r.status >= 400 and r.status not in allowed
            and problems.append(f"{r.status} {r.url}"))
    return problems


def settled(page, promise: str, timeout_ms: int = 90_000):
    """What the page's ``promise`` (an expression) resolves to, or False after the timeout
    (``wait_for_function`` takes a pending promise for a true value)."""
    return page.evaluate(f"Promise.race([{promise}, new Promise(resolve => "
                         f"setTimeout(() => resolve(false), {timeout_ms}))])")


def wait_until(page, expression: str, timeout: float) -> None:
    """Poll ``expression`` in the page until it is true (ms timeout). Playwright's own
    wait_for_function evaluates strings with eval, which a strict CSP forbids."""
    end = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > end:
            raise AssertionError(f"still false after {timeout} ms: {expression}")
        time.sleep(0.01)
