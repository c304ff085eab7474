"""Wiring of authentication and authorization into the services of one app."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from catalog.auth.authenticator import Authenticator
from catalog.auth.tokens import TokenService, resolve_jwt_secret
from catalog.authz.authorizer import Authorizer
from catalog.config import Settings
from catalog.persistence.access_store import AccessStore
from catalog.persistence.store import CatalogStore
from catalog.service.access import AccessService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessControl:
    authenticator: Authenticator
    authorizer: Authorizer
    access: AccessService


def build_access_control(settings: Settings, store: CatalogStore) -> AccessControl:
    """Raises :class:`catalog.auth.tokens.InsecureConfiguration` when the setup is unsafe (refuse to start)."""
    warehouse = store.get_warehouse(settings.warehouse_name)
    assert warehouse is not None, "the default warehouse is created before access control"
    access_store = AccessStore(store.engine)
    tokens = TokenService(settings, resolve_jwt_secret(settings))
    return AccessControl(
        authenticator=Authenticator(access_store, tokens, settings.auth_allow_anonymous),
        authorizer=Authorizer(warehouse.id, settings.auth_allow_anonymous),
        access=AccessService(access_store, store, settings.warehouse_name),
    )


def announce(settings: Settings, access: AccessService) -> None:
    """At start: warn about anonymous access; on the embedded default's first start create the admin."""
    if settings.auth_allow_anonymous:
        log.warning("DATLAKE_AUTH_ALLOW_ANONYMOUS=true: callers without credentials have FULL access to the catalog")
    if settings.embedded:
        access.auto_bootstrap(settings.home)
