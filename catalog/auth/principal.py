"""The authenticated caller, as every route and service sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog.authz.model import Grant


@dataclass(frozen=True)
class Principal:
    """An authenticated principal. ``id`` is None only for the anonymous caller (when allowed).

    ``grants`` are every grant of every role the principal holds, loaded once per request together
    with the credential check; ``credential_id`` is the API key id or OAuth2 client id the
    request was authenticated with (None for anonymous and external OIDC tokens).
    """

    id: int | None
    name: str
    type: str  # "user" | "service" | "anonymous"
    grants: frozenset[Grant] = field(default=frozenset(), compare=False, repr=False)
    credential_id: str | None = field(default=None, compare=False)

    @property
    def is_anonymous(self) -> bool:
        return self.id is None


ANONYMOUS = Principal(id=None, name="anonymous", type="anonymous")
