"""Languages of the wall: Chinese by default, English by a switch (``?lang=en``, remembered)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request, session
from flask_babel import Babel, gettext

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
TRANSLATIONS = Path(__file__).parent / "translations"


def select_locale() -> str:
    """``?lang=`` when given (and remembered in the session), else the session's, else zh."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    return remembered if remembered in LANGUAGES else DEFAULT_LANGUAGE


def init_app(app: Flask) -> None:
    """Bind Flask-Babel with the wall's catalogue (once per app)."""
    if "babel" not in app.extensions:
        Babel(app, locale_selector=select_locale, default_locale=DEFAULT_LANGUAGE,
              default_translation_directories=str(TRANSLATIONS))


def page_strings() -> dict[str, str]:
    """The sentences the wall's script shows, in the request's language."""
    return {
        "reported": gettext("Reported"),
        "filed": gettext("Filed"),
        "dispatched": gettext("Dispatched"),
        "handled": gettext("Handled"),
        "closed": gettext("Closed"),
        "open": gettext("Open"),
        "green": gettext("On time"),
        "yellow": gettext("Due soon"),
        "red": gettext("Overdue"),
        "waiting": gettext("Clock not started"),
        "on_time_rate": gettext("On-time rate"),
        "overdue_list": gettext("Overdue cases"),
        "top_categories": gettext("Top categories today"),
        "top_grids": gettext("Top grids today"),
        "per_hour": gettext("Reports per hour"),
        "districts": gettext("Districts"),
        "streets": gettext("Streets"),
        "communities": gettext("Communities"),
        "grids": gettext("Unit grids"),
        "components": gettext("Components"),
        "cases": gettext("Open cases"),
        "workers": gettext("Workers"),
        "heat": gettext("Reports heat (7 days)"),
        "basemap": gettext("Base map"),
        "forecast": gettext("Next-week forecast"),
        "hotspots": gettext("Hotspots"),
        "expected_next_week": gettext("Expected next week"),
        "interval": gettext("Likely range"),
        "top_forecast": gettext("Most expected"),
        "hotspot": gettext("Hotspot"),
        "all_categories": gettext("All categories"),
        "count_7d": gettext("Cases, last 7 days"),
        "expected_usual": gettext("Usual"),
        "q_value": gettext("q-value"),
        "recurring": gettext("Recurring problem"),
        "recurring_cases": gettext("Cases, last 28 days"),
        "reappeared": gettext("Back soon after closing"),
        "measure": gettext("Shade grids by"),
        "measure_open": gettext("Open cases"),
        "measure_overdue": gettext("Overdue cases"),
        "measure_reports7d": gettext("Reports, last 7 days"),
        "category": gettext("Category"),
        "grid": gettext("Grid"),
        "state": gettext("State"),
        "deadline": gettext("Deadline"),
        "department": gettext("Department"),
        "worker": gettext("Worker"),
        "history": gettext("History"),
        "photos_before": gettext("Before"),
        "photos_after": gettext("After"),
        "no_photos": gettext("No photos"),
        "dispatch": gettext("Dispatch"),
        "redispatch": gettext("Re-dispatch"),
        "dispatch_note": gettext("Note"),
        "dispatch_done": gettext("Dispatched."),
        "choose_department": gettext("Department"),
        "choose_worker": gettext("Worker (optional)"),
        "live": gettext("Live"),
        "offline": gettext("Reconnecting…"),
        "none": gettext("None"),
        "component": gettext("Component"),
        "event": gettext("Event"),
        "online": gettext("On duty"),
        "away": gettext("Off line"),
        "close": gettext("Close"),
        "too_many": gettext("Zoom in to see single cases"),
        "state.reported": gettext("Reported"),
        "state.verified": gettext("Verified"),
        "state.filed": gettext("Filed"),
        "state.cancelled": gettext("Cancelled"),
        "state.dispatched": gettext("Dispatched"),
        "state.accepted": gettext("Accepted"),
        "state.handled": gettext("Handled"),
        "state.checked": gettext("Checked"),
        "state.closed": gettext("Closed"),
        "state.shelved": gettext("Shelved"),
    }
