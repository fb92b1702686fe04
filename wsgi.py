"""WSGI entry point: ``gunicorn wsgi:app``."""

from gridmgr import create_app

app = create_app()
