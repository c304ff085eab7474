"""The SDK's own behaviour that needs no catalog: configuration sources and their precedence, the
profile file, error parsing, retries (against a small real HTTP server), and import isolation."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from datlake_sdk import (
    AuthenticationError,
    ConfigurationError,
    DatalakeClient,
    InvalidRequestError,
    NotFoundError,
    ServerError,
    UnreachableError,
    resolve_config,
    write_profile,
)
from datlake_sdk._config import dump_profiles, read_profiles
from tests.services import free_port


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "datlake" / "config.toml"


def env_with(config_file: Path, **values: str) -> dict[str, str]:
    return {"DATLAKE_CONFIG_FILE": str(config_file), **values}


# --- configuration -----------------------------------------------------------------------------


def test_missing_url_names_every_place_to_set_it(config_file: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_config(env=env_with(config_file))
    message = str(info.value)
    assert "DATLAKE_URL" in message and "url=" in message and str(config_file) in message


def test_environment_supplies_url_and_api_key(config_file: Path) -> None:
    config = resolve_config(env=env_with(config_file, DATLAKE_URL="http://h:1/", DATLAKE_API_KEY="dlk_env"))
    assert config.url == "http://h:1"
    assert config.api_key == "dlk_env"
    assert config.client_id is None


def test_client_id_without_secret_is_named(config_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="DATLAKE_CLIENT_SECRET"):
        resolve_config(env=env_with(config_file, DATLAKE_URL="http://h", DATLAKE_CLIENT_ID="abc"))
    with pytest.raises(ConfigurationError, match="DATLAKE_CLIENT_ID"):
        resolve_config(env=env_with(config_file, DATLAKE_URL="http://h", DATLAKE_CLIENT_SECRET="s"))


def test_precedence_arguments_profile_environment(config_file: Path) -> None:
    write_profile("default", {"url": "http://default", "api_key": "dlk_default"}, config_file)
    write_profile("prod", {"url": "http://prod", "client_id": "id", "client_secret": "sec"}, config_file)
    env = env_with(config_file, DATLAKE_URL="http://env", DATLAKE_API_KEY="dlk_env")

    # environment beats the implicit default profile
    assert resolve_config(env=env).url == "http://env"
    # an explicitly named profile beats the environment, and credentials come from it as a unit
    explicit = resolve_config(profile="prod", env=env)
    assert (explicit.url, explicit.api_key, explicit.client_id) == ("http://prod", None, "id")
    # arguments beat everything
    argued = resolve_config(url="http://arg", api_key="dlk_arg", profile="prod", env=env)
    assert (argued.url, argued.api_key, argued.client_id) == ("http://arg", "dlk_arg", None)
    # without the environment, the default profile applies; DATLAKE_PROFILE selects another
    assert resolve_config(env=env_with(config_file)).api_key == "dlk_default"
    selected = resolve_config(env=env_with(config_file, DATLAKE_PROFILE="prod"))
    assert (selected.url, selected.profile, selected.client_secret) == ("http://prod", "prod", "sec")


def test_unknown_profile_and_unknown_keys_are_configuration_errors(config_file: Path) -> None:
    write_profile("default", {"url": "http://x"}, config_file)
    with pytest.raises(ConfigurationError, match="profile 'nope'.*profiles there: default"):
        resolve_config(profile="nope", env=env_with(config_file))
    with pytest.raises(ConfigurationError, match="DATLAKE_PROFILE"):
        resolve_config(env=env_with(config_file, DATLAKE_PROFILE="nope"))
    config_file.write_text('[default]\nurl = "http://x"\napikey = "typo"\n')
    with pytest.raises(ConfigurationError, match="unknown setting.*apikey"):
        resolve_config(env=env_with(config_file))
    config_file.write_text("[default\n")
    with pytest.raises(ConfigurationError, match="cannot read profile file"):
        resolve_config(env=env_with(config_file))


def test_profile_file_roundtrip_keeps_other_profiles_and_is_private(config_file: Path) -> None:
    tricky = 'quote " backslash \\ newline \n tab \t bell \x07 unicode é'
    write_profile("default", {"url": "http://a", "api_key": tricky, "s3_path_style_access": False}, config_file)
    write_profile("other.team", {"url": "http://b", "timeout": 2.5}, config_file)
    write_profile("default", {"url": "http://a2"}, config_file)  # an update keeps the key
    profiles = tomllib.loads(config_file.read_text())
    assert profiles == {
        "default": {"url": "http://a2", "api_key": tricky, "s3_path_style_access": False},
        "other.team": {"url": "http://b", "timeout": 2.5},
    }
    assert read_profiles(config_file) == profiles
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert tomllib.loads(dump_profiles({})) == {}


def test_s3_settings_from_datlake_then_aws_variables(config_file: Path) -> None:
    env = env_with(
        config_file,
        DATLAKE_URL="http://h",
        DATLAKE_S3_ENDPOINT="http://127.0.0.1:9000",
        DATLAKE_S3_PATH_STYLE_ACCESS="false",
        AWS_ACCESS_KEY_ID="aws-id",
        AWS_SECRET_ACCESS_KEY="aws-secret",
        AWS_REGION="eu-west-3",
    )
    s3 = resolve_config(env=env).s3
    assert (s3.endpoint, s3.access_key_id, s3.secret_access_key, s3.region, s3.path_style) == (
        "http://127.0.0.1:9000",
        "aws-id",
        "aws-secret",
        "eu-west-3",
        False,
    )
    with pytest.raises(ConfigurationError, match="DATLAKE_S3_SECRET_ACCESS_KEY"):
        resolve_config(env=env_with(config_file, DATLAKE_URL="http://h", DATLAKE_S3_ACCESS_KEY_ID="only-id"))


def test_duckdb_secret_sql_reflects_s3_settings(config_file: Path) -> None:
    from datlake_sdk._duckdb import s3_secret_sql

    env = env_with(
        config_file,
        DATLAKE_URL="http://h",
        DATLAKE_S3_ENDPOINT="http://127.0.0.1:9000",
        DATLAKE_S3_ACCESS_KEY_ID="id'x",
        DATLAKE_S3_SECRET_ACCESS_KEY="sec",
    )
    sql = s3_secret_sql(resolve_config(env=env).s3)
    assert "KEY_ID 'id''x'" in sql
    assert "ENDPOINT '127.0.0.1:9000'" in sql and "USE_SSL false" in sql and "URL_STYLE 'path'" in sql


# --- HTTP behaviour against a scripted server ------------------------------------------------


class ScriptedServer:
    """A real HTTP server answering each request with the next (status, body) of a script."""

    def __init__(self, script: list[tuple[int, object]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((self.command, self.path, dict(self.headers)))
                status, body = owner.script.pop(0) if owner.script else (500, {"error": "script exhausted"})
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    server = ScriptedServer(request.param)
    yield server
    server.close()


def client_for(url: str, config_file: Path, **kwargs: object) -> DatalakeClient:
    return DatalakeClient(url, "dlk_test", backoff=0.01, env=env_with(config_file), **kwargs)  # type: ignore[arg-type]


TABLES = [{"name": "sales_q1", "latest_snapshot_id": "123"}]


@pytest.mark.parametrize(
    "scripted",
    [[(503, {"error": {"message": "busy", "type": "X", "code": 503}}), (502, {}), (200, TABLES)]],
    indirect=True,
)
def test_retries_502_503_then_succeeds(scripted: ScriptedServer, config_file: Path) -> None:
    with client_for(scripted.url, config_file) as client:
        tables = client.list_tables()
    assert [(t.name, t.latest_snapshot_id) for t in tables] == [("sales_q1", "123")]
    assert len(scripted.requests) == 3
    assert all(headers.get("Authorization") == "Bearer dlk_test" for _, _, headers in scripted.requests)


@pytest.mark.parametrize("scripted", [[(504, {"detail": "gateway"})] * 5], indirect=True)
def test_gives_up_after_retries_with_server_error(scripted: ScriptedServer, config_file: Path) -> None:
    with client_for(scripted.url, config_file, retries=2) as client, pytest.raises(ServerError) as info:
        client.list_tables()
    assert info.value.status_code == 504 and info.value.message == "gateway"
    assert len(scripted.requests) == 3


@pytest.mark.parametrize(
    "scripted",
    [
        [
            (
                404,
                {"error": {"message": "Table does not exist: default.x", "type": "NoSuchTableException", "code": 404}},
            ),
            (422, {"error": {"message": "format 'csv' is not supported", "type": "Unprocessable", "code": 422}}),
            (401, {"error": "invalid_client", "error_description": "unknown client"}),
        ]
    ],
    indirect=True,
)
def test_4xx_never_retried_and_typed_with_server_message(scripted: ScriptedServer, config_file: Path) -> None:
    with client_for(scripted.url, config_file) as client:
        with pytest.raises(NotFoundError) as missing:
            client.latest_snapshot("x")
        assert missing.value.message == "Table does not exist: default.x"
        assert missing.value.error_type == "NoSuchTableException"
        with pytest.raises(InvalidRequestError, match="format 'csv' is not supported"):
            client.register_snapshot("t", "s3://b/k", format="csv")
        with pytest.raises(AuthenticationError, match="unknown client"):
            client.get_job("j")
    assert [(m, p) for m, p, _ in scripted.requests] == [
        ("GET", "/api/v1/tables/x/snapshots/latest"),
        ("POST", "/api/v1/jobs/register-snapshot"),
        ("GET", "/api/v1/jobs/j"),
    ]
    assert scripted.requests[1][2].get("Idempotency-Key")


def test_connection_refused_is_retried_then_unreachable(config_file: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with client_for(url, config_file, retries=2) as client, pytest.raises(UnreachableError) as info:
        client.list_tables()
    assert url in str(info.value) and "after 3 attempt(s)" in str(info.value)


def test_bad_url_scheme_is_a_configuration_error(config_file: Path) -> None:
    with client_for("ftp://example", config_file) as client, pytest.raises(ConfigurationError, match="ftp://example"):
        client.list_tables()


# --- isolation ---------------------------------------------------------------------------------


def test_sdk_and_cli_never_import_server_modules() -> None:
    """The SDK talks HTTP only: importing it (and its CLI) loads no catalog, worker or server stack."""
    code = (
        "import json, sys, datlake_sdk, datlake_sdk.cli;print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    loaded = set(json.loads(result.stdout))
    forbidden = {"catalog", "datlake_ext", "worker", "fastapi", "starlette", "sqlalchemy", "pyiceberg", "rq", "boto3"}
    forbidden |= {"duckdb", "pyarrow", "pydantic"}  # light: DuckDB only when asked for
    assert "datlake_sdk" in loaded and "httpx" in loaded
    assert not loaded & forbidden, loaded & forbidden


QUEUED = (200, {"job_id": "j-1", "status": "queued", "table_name": "t", "uri": "s3://b/k"})


@pytest.mark.parametrize("scripted", [[QUEUED] * 50], indirect=True)
def test_waiting_past_the_timeout_raises_job_timeout(scripted: ScriptedServer, config_file: Path) -> None:
    from datlake_sdk import JobTimeoutError

    with client_for(scripted.url, config_file) as client, pytest.raises(JobTimeoutError) as info:
        client.wait_for_job("j-1", timeout=0.5)
    assert info.value.job.status == "queued" and "still queued after 0.5s" in info.value.message
    polls = len(scripted.requests)
    assert 2 <= polls < 10  # backoff: a handful of polls in half a second, not a busy loop


@pytest.mark.parametrize("scripted", [[QUEUED] * 50], indirect=True)
def test_cli_wait_timeout_exits_1(scripted: ScriptedServer, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from datlake_sdk.cli import main

    monkeypatch.setenv("DATLAKE_CONFIG_FILE", str(config_file))
    monkeypatch.delenv("DATLAKE_PROFILE", raising=False)
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--url", scripted.url, "--api-key", "dlk_x", "job", "j-1", "--wait", "--timeout", "0.3"], out=out, err=err
    )
    assert code == 1
    assert err.getvalue().splitlines() == ["job j-1: queued", "datalake-cli: job j-1 still queued after 0.3s"]


MANY_TABLES = [{"name": f"table_{i:05d}", "latest_snapshot_id": str(i)} for i in range(20000)]


@pytest.mark.parametrize("scripted", [[(200, MANY_TABLES)]], indirect=True)
def test_cli_output_into_a_closed_pipe_is_quiet(scripted: ScriptedServer, config_file: Path) -> None:
    cli = str(Path(sys.executable).parent / "datalake-cli")
    env = {**os.environ, "DATLAKE_CONFIG_FILE": str(config_file), "DATLAKE_URL": scripted.url, "DATLAKE_API_KEY": "k"}
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; '{cli}' list-tables | head -n 2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.splitlines() == ["name         latest_snapshot_id", "table_00000  0"]
    assert result.stderr == ""
