"""``datalake-cli`` as a user runs it (the installed console script, in a subprocess) against a
real catalog: every command, the exit codes, and the seed's shell example verbatim."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest

from tests.sdk.conftest import ROWS_A, ROWS_B, Lake

CLI = shutil.which("datalake-cli") or str(Path(sys.executable).parent / "datalake-cli")


def run(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """Exit ``code``, nothing on stdout, one line on stderr (no traceback) holding each fragment."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("datalake-cli: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --- without a catalog ------------------------------------------------------------------------


def bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATLAKE_", "AWS_"))}
    env["DATLAKE_CONFIG_FILE"] = str(tmp_path / "config.toml")
    return env


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    env = bare_env(tmp_path)
    assert run(env=env).returncode == 2
    assert run("get-uri", env=env).returncode == 2  # missing TABLE
    assert run("register-snapshot", "--uri", "s3://b/k", env=env).returncode == 2  # missing --table-name
    assert run("--output", "xml", "list-tables", env=env).returncode == 2
    assert run("register-snapshot", "--table-name", "t", "--uri", "u", "--mode", "replace", env=env).returncode == 2
    help_text = run("--help", env=env)
    assert help_text.returncode == 0
    for command in ("get-uri", "list-tables", "latest", "snapshots", "register-snapshot", "job", "configure"):
        assert command in help_text.stdout


def test_missing_url_is_one_line_exit_2(tmp_path: Path) -> None:
    assert_one_line_error(run("list-tables", env=bare_env(tmp_path)), 2, "no catalog URL", "DATLAKE_URL")


def test_unreachable_catalog_exit_1(tmp_path: Path) -> None:
    from tests.services import free_port

    env = {**bare_env(tmp_path), "DATLAKE_URL": f"http://127.0.0.1:{free_port()}", "DATLAKE_API_KEY": "dlk_x"}
    assert_one_line_error(run("list-tables", env=env), 1, "cannot reach the catalog")


def test_configure_writes_a_profile(tmp_path: Path) -> None:
    env = bare_env(tmp_path)
    result = run(
        "--profile", "staging", "configure", "--url", "http://127.0.0.1:1", "--api-key", "dlk_abc",
        "--s3-endpoint", "http://127.0.0.1:9000", "--no-s3-path-style-access", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "profile 'staging' written" in result.stderr
    import tomllib

    written = tomllib.loads((tmp_path / "config.toml").read_text())
    assert written == {
        "staging": {
            "url": "http://127.0.0.1:1",
            "api_key": "dlk_abc",
            "s3_endpoint": "http://127.0.0.1:9000",
            "s3_path_style_access": False,
        }
    }
    assert (tmp_path / "config.toml").stat().st_mode & 0o077 == 0
    # nothing to write, no terminal: a usage error
    assert_one_line_error(run("configure", env=env), 2, "nothing to configure")
    # an unknown profile is named
    assert_one_line_error(run("--profile", "prod", "list-tables", env=env), 2, "profile 'prod'", "staging")


def test_bad_schema_file_is_usage_error(tmp_path: Path) -> None:
    env = {**bare_env(tmp_path), "DATLAKE_URL": "http://127.0.0.1:1"}
    bad = tmp_path / "schema.json"
    bad.write_text("{not json")
    result = run("register-snapshot", "--table-name", "t", "--uri", "s3://b/k", "--schema-file", str(bad), env=env)
    assert_one_line_error(result, 2, "cannot read schema file", str(bad))


# --- against the catalog ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True)
@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.redis
def test_every_command_against_the_catalog(lake: Lake, tmp_path: Path) -> None:
    env = lake.process_env()
    table = f"cli_{uuid.uuid4().hex[:8]}"
    first = lake.upload(f"uploads/{table}/a.parquet", ROWS_A)

    # register-snapshot without --wait: the job id alone on stdout
    submitted = run("register-snapshot", "--table-name", table, "--uri", first, env=env)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert job_id and "\n" not in job_id

    # job --wait: progress on stderr, the final record on stdout
    waited = run("job", job_id, "--wait", "--timeout", "60", env=env)
    assert waited.returncode == 0, waited.stderr
    assert f"job {job_id}: completed" in waited.stderr
    record = dict(line.split(None, 1) for line in waited.stdout.strip().splitlines())
    assert record["status"] == "completed" and record["table_name"] == table
    snapshot_id = record["snapshot_id"]

    shown = run("--output", "json", "job", job_id, env=env)
    assert shown.returncode == 0 and json.loads(shown.stdout)["snapshot_id"] == snapshot_id

    # get-uri: the URI alone
    uri = run("get-uri", table, env=env)
    assert uri.returncode == 0 and uri.stdout == first + "\n" and uri.stderr == ""
    assert json.loads(run("get-uri", table, "--output", "json", env=env).stdout) == {"table_name": table, "uri": first}

    # list-tables: table and json
    listed = run("list-tables", env=env)
    assert listed.returncode == 0
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split() == ["name", "latest_snapshot_id"]
    assert [table, snapshot_id] in [row.split() for row in rows]
    listed_json = json.loads(run("list-tables", "--output", "json", env=env).stdout)
    assert {"name": table, "latest_snapshot_id": snapshot_id}.items() <= next(
        t for t in listed_json if t["name"] == table
    ).items()

    # latest
    latest = json.loads(run("latest", table, "--output", "json", env=env).stdout)
    assert latest["snapshot_id"] == snapshot_id and latest["uri"] == first and latest["record_count"] == len(ROWS_A)
    latest_table = run("latest", table, env=env).stdout
    assert f"snapshot_id        {snapshot_id}" in latest_table.replace("\t", " ") or snapshot_id in latest_table

    # register-snapshot --wait --mode append, with a schema file
    second = lake.upload(f"uploads/{table}/b.parquet", ROWS_B)
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(latest["schema"]))
    appended = run(
        "register-snapshot", "--table-name", table, "--uri", second, "--mode", "append",
        "--schema-file", str(schema_file), "--format", "parquet", "--wait", env=env,
    )  # fmt: skip
    assert appended.returncode == 0, appended.stderr
    second_job = appended.stdout.strip()
    assert f"job {second_job}: completed" in appended.stderr

    # snapshots: newest first
    history = run("snapshots", table, env=env)
    assert history.returncode == 0
    header, *rows = history.stdout.strip().splitlines()
    assert header.split() == ["snapshot_id", "created_at", "operation", "record_count", "data_files"]
    assert rows[1].split()[0] == snapshot_id and rows[0].split()[3] == str(len(ROWS_A) + len(ROWS_B))
    history_json = json.loads(run("snapshots", table, "--output", "json", env=env).stdout)
    assert [s["snapshot_id"] for s in history_json][1] == snapshot_id

    # jobs
    jobs = run("jobs", "--output", "json", env=env)
    assert {job_id, second_job} <= {j["job_id"] for j in json.loads(jobs.stdout)}

    # global options after the command name, and a profile written by configure
    profile_env = {**lake.process_env(api_key=None), "DATLAKE_URL": ""}
    profile_env.pop("DATLAKE_URL")
    made = run("configure", "--profile", "team", "--url", lake.url, "--api-key", lake.admin_key, env=profile_env)
    assert made.returncode == 0, made.stderr
    via_profile = run("get-uri", table, "--profile", "team", env=profile_env)
    assert via_profile.returncode == 0, via_profile.stderr
    assert via_profile.stdout.strip().startswith("s3://")


@pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True)
@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.redis
def test_failure_exit_codes(lake: Lake) -> None:
    env = lake.process_env()
    # wrong key → 4
    wrong = {**env, "DATLAKE_API_KEY": "dlk_wrong"}
    assert_one_line_error(run("list-tables", env=wrong), 4, "authentication failed")
    assert_one_line_error(run("--api-key", "dlk_wrong", "get-uri", "x", env=env), 4)
    # unknown table → 3
    assert_one_line_error(run("get-uri", "no_such_table", env=env), 3, "not found")
    assert_one_line_error(run("latest", "no_such_table", env=env), 3)
    assert_one_line_error(run("snapshots", "no_such_table", env=env), 3)
    assert_one_line_error(run("job", str(uuid.uuid4()), env=env), 3)
    # a failed job → 5 with the server's message
    table = f"cli_{uuid.uuid4().hex[:8]}"
    bad = lake.upload_bytes(f"uploads/{table}/broken.parquet", b"definitely not parquet")
    failed = run("register-snapshot", "--table-name", table, "--uri", bad, "--wait", env=env)
    assert failed.returncode == 5, (failed.stdout, failed.stderr)
    job_id = failed.stdout.strip() or failed.stderr.split("job ", 1)[1].split(":", 1)[0]
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith(f"datalake-cli: job {job_id} failed: ")
    assert "Traceback" not in failed.stderr
    server_message = json.loads(run("--output", "json", "job", job_id, env=env).stdout)["error"]
    assert server_message and last.endswith(server_message)
    assert "broken.parquet" in server_message
    # job --wait on a failed job → 5 too
    assert run("job", job_id, "--wait", env=env).returncode == 5
    # forbidden → 4: a reader of an existing table may not append to it
    good = lake.upload(f"uploads/{table}/good.parquet", ROWS_A)
    assert run("register-snapshot", "--table-name", table, "--uri", good, "--wait", env=env).returncode == 0
    reader = lake.principal_with_grants(f"reader_{table}", [("SELECT", "table", f"{lake.namespace}.{table}")])
    reader_env = {**env, "DATLAKE_API_KEY": reader}
    assert run("get-uri", table, env=reader_env).stdout.strip() == good
    forbidden = run("register-snapshot", "--table-name", table, "--uri", good, "--mode", "append", env=reader_env)
    assert_one_line_error(forbidden, 4, "forbidden")


SEED_SHELL = """\
export TABLE_URI=$(datalake-cli get-uri sales_q1)
duckdb -c "COPY (SELECT * FROM '$TABLE_URI') TO 'local_copy.csv' (HEADER, DELIMITER ',');"
datalake-cli register-snapshot --table-name new_data --uri s3://my-bucket/uploads/new.parquet
"""


@pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True)
@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.redis
def test_seed_shell_example_verbatim(lake: Lake, tmp_path: Path) -> None:
    """The README's shell example, unchanged: the `duckdb` CLI reads S3 through the persistent
    secret that `datalake-cli setup-duckdb` stores, and the upload bucket is allowed for registration."""
    assert SEED_SHELL in (Path(__file__).parents[2] / "docs" / "cli.md").read_text(), "docs/cli.md shows it as is"
    assert shutil.which("duckdb", path=os.path.dirname(CLI)), "pip install duckdb-cli==1.5.5"
    uri = lake.upload("uploads/sales_q1/q1.parquet", ROWS_A)
    env = lake.process_env()
    with lake.client() as client:
        client.register_snapshot("sales_q1", uri, wait=True, timeout=60)
    lake.upload_to("my-bucket", "uploads/new.parquet", ROWS_B)

    setup = run("setup-duckdb", env=env)
    assert setup.returncode == 0, setup.stderr
    assert "datlake_s3" in setup.stderr

    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        ["bash", "-e", "-c", SEED_SHELL], env=env, cwd=work, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (result.stdout, result.stderr)

    with (work / "local_copy.csv").open(newline="") as fh:
        copied = list(csv.reader(fh))
    assert copied[0] == ["id", "name", "amount"]
    assert [(int(r[0]), r[1], float(r[2])) for r in copied[1:]] == ROWS_A

    job_id = result.stdout.strip().splitlines()[-1]
    with lake.client() as client:
        job = client.wait_for_job(job_id, timeout=60)
        assert job.table_name == "new_data" and job.uri == "s3://my-bucket/uploads/new.parquet"
        assert client.latest_snapshot("new_data").record_count == len(ROWS_B)


def test_configure_prompts_in_a_terminal(tmp_path: Path) -> None:
    """Run in a terminal with nothing to write, `configure` asks for the URL and the key (unechoed)."""
    import pty
    import select

    env = bare_env(tmp_path)
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads alive; the child only calls execve.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on the terminal
        os.execve(CLI, [CLI, "configure"], env)
    transcript = b""

    def read_until(marker: bytes, deadline: float = 30) -> None:
        nonlocal transcript
        import time

        end = time.monotonic() + deadline
        while marker not in transcript and time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    transcript += os.read(fd, 1024)
                except OSError:
                    break
        assert marker in transcript, transcript

    read_until(b"Catalog URL")
    os.write(fd, b"http://127.0.0.1:8181\n")
    read_until(b"API key")
    os.write(fd, b"dlk_typed_key\n")
    read_until(b"written to")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"dlk_typed_key" not in transcript  # not echoed
    import tomllib

    assert tomllib.loads((tmp_path / "config.toml").read_text()) == {
        "default": {"url": "http://127.0.0.1:8181", "api_key": "dlk_typed_key"}
    }
