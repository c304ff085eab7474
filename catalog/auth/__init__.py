"""Authentication: who is calling (API keys, OAuth2 client credentials, JWTs, OIDC)."""
