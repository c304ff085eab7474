"""Detached mode on an app: mounts the /api/v1 table and job routers and builds their services."""

from __future__ import annotations

from fastapi import FastAPI

from catalog.rest.api_docs import DATLAKE_ERRORS
from catalog.rest.deps import Services
from catalog.service.detached import DetachedService
from datlake_ext import jobs, tables
from datlake_ext.deps import DetachedMode
from worker.runtime import build_runtime


def install(app: FastAPI, services: Services) -> DetachedMode:
    """Mount /api/v1 tables and jobs on ``app``; close the returned object when the app shuts down."""
    runtime = build_runtime(services.settings, services.store, services.storage, services.commits)
    if runtime.inline:
        runtime.start_reaper()  # embedded: this process runs the jobs, so it also recovers them after a crash
    mode = DetachedMode(DetachedService(services.settings, services.store, services.storage, services.tables), runtime)
    app.state.detached = mode
    app.include_router(tables.router, responses=DATLAKE_ERRORS)
    app.include_router(jobs.router, responses=DATLAKE_ERRORS)
    return mode
