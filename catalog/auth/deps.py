"""FastAPI dependencies for identity and authorization, used by every router of both APIs.

``CurrentPrincipal`` authenticates the request (401 in the spec's error model otherwise) and
``AuthorizerDep`` is the one :class:`~catalog.authz.authorizer.Authorizer`::

    @router.get("/things/{name}")
    def load(principal: CurrentPrincipal, authorizer: AuthorizerDep, ...) -> ...:
        authorizer.require(principal, Action.LOAD_TABLE, Securable.table(warehouse.id, ns, name))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from catalog.auth.principal import Principal
from catalog.auth.tokens import NotKept
from catalog.authz.authorizer import Authorizer

if TYPE_CHECKING:
    from catalog.auth.authenticator import Authenticator


async def kept_or_looked_up(
    authenticator: Authenticator, authenticate: Callable[..., Principal], *args: Any
) -> Principal:
    """``authenticate(*args)`` (a method of ``authenticator``) on the event loop when the caller is
    kept in memory (no database round trip), else in the thread pool, where it may read the
    database. Where nothing can be kept (SQLite, the listener down) it goes there directly."""
    if authenticator.keeps_callers:
        try:
            return authenticate(*args, kept_only=True)
        except NotKept:
            pass
    return await run_in_threadpool(authenticate, *args)


async def get_principal(request: Request) -> Principal:
    """The authenticated caller of this request (credentials are re-checked on every request)."""
    authenticator: Authenticator = request.app.state.services.authenticator
    return await kept_or_looked_up(authenticator, authenticator.authenticate, request.headers)


async def get_authorizer(request: Request) -> Authorizer:  # async: no thread-pool hop
    authorizer: Authorizer = request.app.state.services.authorizer
    return authorizer


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
AuthorizerDep = Annotated[Authorizer, Depends(get_authorizer)]
