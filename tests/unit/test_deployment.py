"""docker-compose.yml and the Dockerfile agree with the code: settings names and entry points.

There is no Docker engine on CI machines, so the compose file is validated with
`docker-compose config -q` (works without an engine) and its contents are checked here.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog.cli import build_parser
from catalog.config import Settings
from tests.services import unavailable

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_file_is_valid() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        unavailable("docker-compose", "install Debian's docker-compose package to validate the compose file")
    result = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_compose_has_the_whole_stack_with_healthchecks() -> None:
    services = _compose()["services"]
    for name in ("postgres", "redis", "minio", "api", "worker"):
        assert name in services, f"docker-compose.yml lacks the {name} service"
    for name in ("postgres", "redis", "minio", "api", "worker"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    # the worker's healthcheck asks its metrics port, which must therefore be served
    worker_port = services["worker"]["environment"]["DATLAKE_WORKER_METRICS_PORT"]
    assert f":{worker_port}/metrics" in " ".join(services["worker"]["healthcheck"]["test"])
    api_deps = services["api"]["depends_on"]
    assert api_deps["migrate"]["condition"] == "service_completed_successfully", "the API must start after migrations"


def test_compose_environment_names_real_settings() -> None:
    known = {f"DATLAKE_{name.upper()}" for name in Settings.model_fields}
    for name, service in _compose()["services"].items():
        for variable in service.get("environment") or {}:
            if variable.startswith("DATLAKE_"):
                assert variable in known, f"{name}: {variable} is not a setting of catalog/config.py"


def test_compose_commands_are_real_entry_points() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for name, service in _compose()["services"].items():
        command = service.get("command")
        if not command or service.get("image", "").startswith(("postgres", "redis", "minio")):
            continue
        argv = command if isinstance(command, list) else command.split()
        if argv[0] in ("sh", "/bin/sh"):
            argv = argv[-1].split()
        assert argv[0] in scripts, f"{name}: {argv[0]} is not a console script of the project"
        if argv[0] == "datlake":
            assert argv[1] in subcommands, f"{name}: `datlake {argv[1]}` does not exist"


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("catalog", "datlake_ext", "worker", "datlake_sdk"):
        if (ROOT / package).is_dir():
            assert f"COPY {package} " in dockerfile, f"the image lacks the {package} package"


@pytest.mark.parametrize("path", ["docker-compose.yml", "Dockerfile"])
def test_deployment_files_exist(path: str) -> None:
    assert (ROOT / path).is_file()
