"""The detached-mode services of an app, and their FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from catalog.auth.principal import Principal
from catalog.authz.authorizer import Authorizer
from catalog.authz.model import Action, Securable
from catalog.service.detached import DetachedService
from catalog.service.jobs import JobService
from worker.runtime import JobRuntime

NEXT_PAGE_HEADER = "X-Next-Page-Token"


@dataclass
class DetachedMode:
    detached: DetachedService
    runtime: JobRuntime

    @property
    def jobs(self) -> JobService:
        return self.runtime.jobs

    def close(self) -> None:
        self.runtime.close()


def _mode(request: Request) -> DetachedMode:
    mode: DetachedMode = request.app.state.detached
    return mode


def get_detached(request: Request) -> DetachedService:
    return _mode(request).detached


def get_jobs(request: Request) -> JobService:
    return _mode(request).jobs


DetachedDep = Annotated[DetachedService, Depends(get_detached)]
JobsDep = Annotated[JobService, Depends(get_jobs)]


def is_admin(principal: Principal, authorizer: Authorizer) -> bool:
    """Server administrators see every job."""
    return authorizer.is_allowed(principal, Action.ADMINISTER, Securable.catalog(authorizer.default_warehouse_id))
