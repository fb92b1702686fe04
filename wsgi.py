"""WSGI entry point: ``gunicorn wsgi:app``."""

from gridmgr import create_app
from gridmgr.serving import settle_memory

app = create_app()
settle_memory()
