"""Where a client's settings come from: arguments, the environment, and a profile file.

Precedence, highest first:

1. arguments given to ``DatalakeClient`` (the CLI's ``--url``, ``--api-key``);
2. the profile named by the ``profile=`` argument (``--profile``), when one is named;
3. environment variables (``DATLAKE_URL``, ``DATLAKE_API_KEY``, ...);
4. the profile named by ``DATLAKE_PROFILE``, else ``default``, in the profile file;
5. for S3 only: the standard ``AWS_*`` variables.

Credentials are taken as a unit from the first of these that has any (an API key, or a client id
and secret), so a key from one place is never paired with a secret from another.

The profile file is ``~/.config/datlake/config.toml`` (``DATLAKE_CONFIG_FILE`` overrides the
path), one TOML table per profile::

    [default]
    url = "http://127.0.0.1:8181"
    api_key = "dlk_..."
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datlake_sdk._errors import ConfigurationError

DEFAULT_PROFILE = "default"
DEFAULT_TIMEOUT = 30.0

# profile key → environment variable
ENV_VARS: dict[str, str] = {
    "url": "DATLAKE_URL",
    "api_key": "DATLAKE_API_KEY",
    "client_id": "DATLAKE_CLIENT_ID",
    "client_secret": "DATLAKE_CLIENT_SECRET",
    "scope": "DATLAKE_SCOPE",
    "timeout": "DATLAKE_TIMEOUT",
    "s3_endpoint": "DATLAKE_S3_ENDPOINT",
    "s3_access_key_id": "DATLAKE_S3_ACCESS_KEY_ID",
    "s3_secret_access_key": "DATLAKE_S3_SECRET_ACCESS_KEY",
    "s3_session_token": "DATLAKE_S3_SESSION_TOKEN",
    "s3_region": "DATLAKE_S3_REGION",
    "s3_path_style_access": "DATLAKE_S3_PATH_STYLE_ACCESS",
}
AWS_ENV_VARS: dict[str, tuple[str, ...]] = {
    "s3_endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "s3_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "s3_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "s3_session_token": ("AWS_SESSION_TOKEN",),
    "s3_region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
}
PROFILE_KEYS = frozenset(ENV_VARS)
CREDENTIAL_KEYS = ("api_key", "client_id", "client_secret")
S3_CREDENTIAL_KEYS = ("s3_access_key_id", "s3_secret_access_key", "s3_session_token")

Values = dict[str, Any]


@dataclass(frozen=True)
class S3Settings:
    """How a local reader (DuckDB) reaches the object store the catalog's tables live in."""

    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    region: str = "us-east-1"
    path_style: bool = True

    @property
    def configured(self) -> bool:
        return bool(self.endpoint or self.access_key_id)


@dataclass(frozen=True)
class ClientConfig:
    """Everything a ``DatalakeClient`` was set up with, after resolving all sources."""

    url: str
    api_key: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    s3: S3Settings = S3Settings()
    profile: str | None = None

    @property
    def has_credentials(self) -> bool:
        return bool(self.api_key or self.client_id)


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The profile file: ``DATLAKE_CONFIG_FILE``, else ``~/.config/datlake/config.toml``."""
    env = os.environ if env is None else env
    if explicit := env.get("DATLAKE_CONFIG_FILE"):
        return Path(explicit).expanduser()
    return Path.home() / ".config" / "datlake" / "config.toml"


def read_profiles(path: Path) -> dict[str, Values]:
    """All profiles in the file at ``path``; an absent file has none."""
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read profile file {path}: {exc}") from exc
    profiles: dict[str, Values] = {}
    for name, table in document.items():
        if not isinstance(table, dict):
            raise ConfigurationError(f"{path}: `{name}` must be a [table] holding one profile's settings")
        unknown = sorted(set(table) - PROFILE_KEYS)
        if unknown:
            raise ConfigurationError(
                f"{path}: profile '{name}' has unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(PROFILE_KEYS))}"
            )
        profiles[name] = dict(table)
    return profiles


def _from_env(env: Mapping[str, str]) -> Values:
    return {key: env[var] for key, var in ENV_VARS.items() if env.get(var)}


def _from_aws_env(env: Mapping[str, str]) -> Values:
    values: Values = {}
    for key, names in AWS_ENV_VARS.items():
        for name in names:
            if env.get(name):
                values[key] = env[name]
                break
    return values


def _first(layers: list[Values], key: str) -> Any:
    for layer in layers:
        if layer.get(key) not in (None, ""):
            return layer[key]
    return None


def _first_group(layers: list[Values], keys: tuple[str, ...]) -> Values:
    """The keys from the first layer that sets any of them, so a group never mixes sources."""
    for layer in layers:
        group = {key: layer[key] for key in keys if layer.get(key) not in (None, "")}
        if group:
            return group
    return {}


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{what} must be true or false, not {value!r}")


def resolve_config(
    *,
    url: str | None = None,
    api_key: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    profile: str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Combine arguments, environment and profile file into one configuration, or say what is missing."""
    env = os.environ if env is None else env
    path = config_path(env)
    arguments: Values = {
        key: value
        for key, value in {
            "url": url,
            "api_key": api_key,
            "client_id": client_id,
            "client_secret": client_secret,
            "timeout": timeout,
        }.items()
        if value is not None
    }
    profiles = read_profiles(path)
    layers: list[Values] = [arguments]
    if profile is not None:
        if profile not in profiles:
            raise ConfigurationError(_missing_profile(profile, path, profiles, "profile="))
        layers.append(profiles[profile])
        used: str | None = profile
        layers.append(_from_env(env))
    else:
        layers.append(_from_env(env))
        implicit = env.get("DATLAKE_PROFILE") or None
        if implicit is not None and implicit not in profiles:
            raise ConfigurationError(_missing_profile(implicit, path, profiles, "DATLAKE_PROFILE"))
        used = implicit or (DEFAULT_PROFILE if DEFAULT_PROFILE in profiles else None)
        if used is not None:
            layers.append(profiles[used])

    where = f"profile '{used}' in {path}" if used else f"a profile in {path}"
    resolved_url = _first(layers, "url")
    if not resolved_url:
        raise ConfigurationError(
            f"no catalog URL: pass url= (--url), set DATLAKE_URL, or add `url` to {where} (datalake-cli configure)"
        )
    credentials = _first_group(layers, CREDENTIAL_KEYS)
    if not credentials.get("api_key"):
        if credentials.get("client_id") and not credentials.get("client_secret"):
            raise ConfigurationError(
                "a client id was given without its secret: set DATLAKE_CLIENT_SECRET or client_secret"
            )
        if credentials.get("client_secret") and not credentials.get("client_id"):
            raise ConfigurationError("a client secret was given without its id: set DATLAKE_CLIENT_ID or client_id")

    s3_layers = [*layers, _from_aws_env(env)]
    s3_credentials = _first_group(s3_layers, S3_CREDENTIAL_KEYS)
    if bool(s3_credentials.get("s3_access_key_id")) != bool(s3_credentials.get("s3_secret_access_key")):
        has_id = bool(s3_credentials.get("s3_access_key_id"))
        missing = "DATLAKE_S3_SECRET_ACCESS_KEY" if has_id else "DATLAKE_S3_ACCESS_KEY_ID"
        raise ConfigurationError(f"S3 credentials are incomplete: set {missing} (or s3_... in {where})")
    path_style = _first(s3_layers, "s3_path_style_access")
    s3 = S3Settings(
        endpoint=_first(s3_layers, "s3_endpoint"),
        access_key_id=s3_credentials.get("s3_access_key_id"),
        secret_access_key=s3_credentials.get("s3_secret_access_key"),
        session_token=s3_credentials.get("s3_session_token"),
        region=str(_first(s3_layers, "s3_region") or "us-east-1"),
        path_style=True if path_style is None else _bool(path_style, "s3_path_style_access"),
    )
    raw_timeout = _first(layers, "timeout")
    try:
        resolved_timeout = DEFAULT_TIMEOUT if raw_timeout is None else float(raw_timeout)
    except ValueError as exc:
        raise ConfigurationError(f"timeout must be a number of seconds, not {raw_timeout!r}") from exc
    return ClientConfig(
        url=str(resolved_url).rstrip("/"),
        api_key=credentials.get("api_key"),
        client_id=None if credentials.get("api_key") else credentials.get("client_id"),
        client_secret=None if credentials.get("api_key") else credentials.get("client_secret"),
        scope=_first(layers, "scope"),
        timeout=resolved_timeout,
        s3=s3,
        profile=used,
    )


def _missing_profile(name: str, path: Path, profiles: dict[str, Values], how: str) -> str:
    known = ", ".join(sorted(profiles)) or "none"
    return (
        f"profile '{name}' (from {how}) is not in {path} (profiles there: {known}); "
        f"create it with `datalake-cli configure --profile {name}`"
    )


# --- writing ---------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_string(value: str) -> str:
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _toml_string(str(value))


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def dump_profiles(profiles: Mapping[str, Mapping[str, Any]]) -> str:
    """The profile file's text: one table per profile, scalar values only."""
    blocks = []
    for name, values in profiles.items():
        lines = [f"[{_toml_key(name)}]"]
        lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in values.items() if value is not None]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def write_profile(name: str, values: Mapping[str, Any], path: Path | None = None) -> Path:
    """Create or update profile ``name`` (other profiles are kept; comments are not).

    Given values replace the profile's; the file is written atomically and readable only by its
    owner, since it holds secrets.
    """
    unknown = sorted(set(values) - PROFILE_KEYS)
    if unknown:
        raise ConfigurationError(f"unknown profile setting(s): {', '.join(unknown)}")
    path = config_path() if path is None else path
    profiles = read_profiles(path)
    merged = {**profiles.get(name, {}), **{k: v for k, v in values.items() if v is not None}}
    profiles[name] = merged
    text = dump_profiles(profiles)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
