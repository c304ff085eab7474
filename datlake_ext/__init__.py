"""Datlake extensions to the catalog: the /api/v1 routers (detached mode, administration)."""
