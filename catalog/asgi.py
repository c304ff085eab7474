"""ASGI entry point for uvicorn (``catalog.asgi:app``); configuration comes from DATLAKE_* variables."""

from catalog.app import create_app

app = create_app()
