"""FastAPI dependencies for identity and authorization, used by every router of both APIs.

``CurrentPrincipal`` authenticates the request (401 in the spec's error model otherwise) and
``AuthorizerDep`` is the one :class:`~catalog.authz.authorizer.Authorizer`::

    @router.get("/things/{name}")
    def load(principal: CurrentPrincipal, authorizer: AuthorizerDep, ...) -> ...:
        authorizer.require(principal, Action.LOAD_TABLE, Securable.table(warehouse.id, ns, name))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from catalog.auth.authenticator import NotKept
from catalog.auth.principal import Principal
from catalog.authz.authorizer import Authorizer

if TYPE_CHECKING:
    from catalog.auth.authenticator import Authenticator


async def get_principal(request: Request) -> Principal:
    """The authenticated caller of this request (credentials are re-checked on every request).

    A caller kept in memory is authenticated on the event loop; otherwise the database lookup
    runs in the thread pool."""
    authenticator: Authenticator = request.app.state.services.authenticator
    try:
        return authenticator.authenticate(request.headers, kept_only=True)
    except NotKept:
        return await run_in_threadpool(authenticator.authenticate, request.headers)


async def get_authorizer(request: Request) -> Authorizer:  # async: no thread-pool hop
    authorizer: Authorizer = request.app.state.services.authorizer
    return authorizer


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
AuthorizerDep = Annotated[Authorizer, Depends(get_authorizer)]
