"""The workbench's words: its own catalogue merged over the wall's, in the wall's locale
(``?lang=`` remembered in the session, Chinese by default)."""

from __future__ import annotations

from pathlib import Path

from flask_babel import Domain

from maps.i18n import TRANSLATIONS as WALL_TRANSLATIONS

TRANSLATIONS = Path(__file__).parent / "translations"
domain = Domain(translation_directories=[str(WALL_TRANSLATIONS), str(TRANSLATIONS)])
gettext = domain.gettext
