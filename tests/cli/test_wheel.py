"""The wheel the Docker image installs: built from exactly what the Dockerfile copies, it
holds every file of the packages (SQL, templates, static files, scenarios…), declares the
`looptrack` command, and, installed on its own, finds its files and runs the commands
docker-compose.yml gives its containers."""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
# Never part of a package: what .dockerignore keeps out of the image's build context.
NOT_PACKAGE_FILES = ("__pycache__", "*.pyc")
# pip builds in an isolated environment (setuptools from PyPI or pip's cache): seconds.
BUILD_TIMEOUT_S = 120
RUN_TIMEOUT_S = 60


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines)
        if word and not word.startswith("#")
    ]


def build_stage_copies() -> list[str]:
    """The sources of the build stage's COPY instructions: the image's build context."""
    sources: list[str] = []
    stages = 0
    for instruction, arguments in dockerfile_instructions():
        if instruction == "FROM":
            stages += 1
            if stages > 1:
                break
        elif instruction == "COPY" and not arguments.startswith("--"):
            sources += arguments.split()[:-1]
    return sources


def package_dirs() -> list[str]:
    """Top-level package directories that [tool.setuptools.packages.find] includes."""
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        path.name
        for path in ROOT.iterdir()
        if (path / "__init__.py").is_file()
        and any(fnmatch.fnmatch(path.name, pattern) for pattern in include)
    )


def package_files() -> set[str]:
    """Every file under the package directories, as paths inside the wheel."""
    found: set[str] = set()
    for package in package_dirs():
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT)
            if path.is_file() and not any(
                fnmatch.fnmatch(part, pattern)
                for part in relative.parts
                for pattern in NOT_PACKAGE_FILES
            ):
                found.add(relative.as_posix())
    return found


def run(args: list[str | Path], cwd: Path, timeout_s: float = RUN_TIMEOUT_S) -> str:
    """Run a command outside the checkout, with no looptrack settings; its stdout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LOOPTRACK_") and key != "PYTHONPATH"
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    command = " ".join(str(arg) for arg in args)
    assert result.returncode == 0, f"{command[:200]}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel` as the Dockerfile runs it, in a copy of only what the Dockerfile copies
    (a build in the checkout could also pick up a stale build/ or *.egg-info)."""
    context = tmp_path_factory.mktemp("docker-context")
    for source in build_stage_copies():
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, context / source, ignore=shutil.ignore_patterns(*NOT_PACKAGE_FILES)
            )
        else:
            shutil.copy2(ROOT / source, context / source)
    wheels = tmp_path_factory.mktemp("wheels")
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--wheel-dir", wheels, "."],
        cwd=context,
        timeout_s=BUILD_TIMEOUT_S,
    )
    (built,) = wheels.glob("looptrack-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed (--no-deps); the dependencies come from
    this interpreter's site-packages through a .pth path line, which adds the directory
    without running its .pth files: the editable install's import hook stays out, so the
    wheel's copy is the only looptrack on the path."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    base = {"base": str(env_dir), "platbase": str(env_dir)}
    site_packages = Path(sysconfig.get_path("purelib", vars=base))
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site_packages / "dependencies.pth").write_text("\n".join(ours) + "\n")
    python = env_dir / "bin" / "python"
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python]
    run([*pip, "install", "--no-deps", "--no-index", "-q", wheel], cwd=env_dir)
    return env_dir


def test_the_wheel_holds_every_file_of_the_packages(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = sorted(package_files() - names)
    assert not missing, f"not in the wheel (see [tool.setuptools.package-data]): {missing}"
    top_level = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top_level == set(package_dirs())


def test_the_wheel_declares_the_looptrack_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [
            n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")
        ]
        text = archive.read(entry_points).decode("utf-8")
    parser = configparser.ConfigParser()
    parser.read_string(text)
    assert dict(parser["console_scripts"]) == PYPROJECT["project"]["scripts"]
    assert "looptrack" in parser["console_scripts"]


# Run by the installed wheel's interpreter: imports every package from the wheel and
# reads each kind of file the program loads at run time; prints what it found.
FIND_FILES = """
import json, sys
from importlib import resources
from pathlib import Path

import api, devices, ingest, looptrack, schemas
outside = [m.__name__ for m in (api, devices, ingest, looptrack, schemas)
           if not Path(m.__file__).is_relative_to(sys.prefix)]
assert not outside, f"not imported from the wheel: {outside}"

from api.app import create_app  # every api module reads its named queries on import
import ingest.item_loops, ingest.writer  # ingest/queries.sql, ingest/item_loops.sql
from api.pages.routes import TEMPLATES
from devices.simulator.scenario import builtin_scenario
from schemas.jsonschema import PAYLOAD_SCHEMA_PATH
from schemas.migrations import load_migrations

create_app()  # mounts the static files' directory, which must exist
templates = sorted(TEMPLATES.env.list_templates())
for name in templates:
    TEMPLATES.get_template(name)
scenarios = sorted(
    entry.name.removesuffix(".yaml")
    for entry in (resources.files("devices") / "scenarios").iterdir()
    if entry.name.endswith(".yaml")
)
for name in scenarios:
    builtin_scenario(name)
json.loads(PAYLOAD_SCHEMA_PATH.read_text("utf-8"))
print(json.dumps({
    "migrations": [m.version for m in load_migrations()],
    "templates": templates,
    "scenarios": scenarios,
}))
"""


def test_the_installed_wheel_reads_its_own_files(installed: Path) -> None:
    found: dict[str, Any] = json.loads(
        run([installed / "bin" / "python", "-c", FIND_FILES], cwd=installed)
    )
    assert found == {
        "migrations": sorted(p.stem for p in (ROOT / "schemas/sql/migrations").glob("*.sql")),
        "templates": sorted(p.name for p in (ROOT / "api/pages/templates").glob("*.html")),
        "scenarios": sorted(p.stem for p in (ROOT / "devices/scenarios").glob("*.yaml")),
    }


def compose_commands() -> dict[str, list[str]]:
    """The looptrack arguments of each docker-compose.yml service run from the image,
    up to the first option."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    commands: dict[str, list[str]] = {}
    for name, service in compose["services"].items():
        if "build" in service and "command" in service:
            args = service["command"]
            end = next((i for i, arg in enumerate(args) if arg.startswith("-")), len(args))
            commands[name] = args[:end]
    return commands


def test_the_images_containers_run_installed_looptrack_commands(installed: Path) -> None:
    (script,) = PYPROJECT["project"]["scripts"]
    entrypoints = [json.loads(a) for i, a in dockerfile_instructions() if i == "ENTRYPOINT"]
    assert entrypoints == [[script]]
    commands = compose_commands()
    assert {"migrate", "ingest-1", "ingest-2", "api"} <= commands.keys()
    run([installed / "bin" / script, "--help"], cwd=installed)
    for args in {tuple(args) for args in commands.values()}:
        run([installed / "bin" / script, *args, "--help"], cwd=installed)


def test_the_wheel_carries_the_license_pyproject_names(wheel: Path) -> None:
    """pyproject.toml's license expression, the LICENSE file beside it, and the copy the
    wheel ships name the same license."""
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    with zipfile.ZipFile(wheel) as archive:
        shipped = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert len(shipped) == 1, archive.namelist()
        assert archive.read(shipped[0]).decode("utf-8") == text
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        assert "License-Expression: Apache-2.0" in archive.read(metadata).decode("utf-8")
