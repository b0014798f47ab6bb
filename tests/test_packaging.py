"""Packaging: the compose file against the Compose schema, the Dockerfile's steps, and a
non-editable ``pip install .`` that serves the page with no network."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import jsonschema
import yaml

from server import serve

ROOT = Path(__file__).resolve().parent.parent
WHEEL = ROOT / ".venv" / "wheels" / "docker_compose-1.29.2-py2.py3-none-any.whl"


def test_compose_file_is_valid_compose_spec() -> None:
    with zipfile.ZipFile(WHEEL) as z:
        schema = json.loads(z.read("compose/config/compose_spec.json"))
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # (the schema names draft 2019-09 as "http://...schema#", which jsonschema does not
    # recognise by that spelling: its validator is chosen here instead of guessed)
    jsonschema.Draft201909Validator.check_schema(schema)
    jsonschema.Draft201909Validator(schema).validate(doc)
    services = doc["services"]
    # two replicas sharing Redis behind the load balancer, each with a healthcheck
    assert services["lb"]["ports"] == ["127.0.0.1:8000:80"]
    lb_address = services["lb"]["networks"]["chainlens"]["ipv4_address"]
    for name in ("chainlens-1", "chainlens-2"):
        env = services[name]["environment"]
        assert env["CHAINLENS_REDIS_URL"] == "redis://redis:6379/0"
        assert env["CHAINLENS_FORWARDED_ALLOW_IPS"] == lb_address  # the proxy, and only it
        assert "/api/v1/ready" in " ".join(services[name]["healthcheck"]["test"])
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    command = services["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "allkeys-lru"
    assert all("healthcheck" in services[s] for s in ("redis", "lb"))
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server chainlens-1:8000" in conf and "server chainlens-2:8000" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf  # never the client's own
    gpu = services["chainlens-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["environment"]["CHAINLENS_DEVICE"] == "cuda"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_the_image_is_small_and_unprivileged() -> None:
    """The CPU wheel of torch, the package without its test extras, a user of its own."""
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in lines
    assert any('--index-url "$TORCH_INDEX"' in line for line in lines)
    assert not any(".[test]" in line or "make setup" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") for line in lines)


def test_the_build_context_leaves_out_what_was_built_here() -> None:
    """The context docker sends, by .dockerignore's own rules (docker-py's reading of
    them): the package's sources, never the virtualenv or node_modules."""
    from docker.utils.build import exclude_paths

    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = exclude_paths(str(ROOT), patterns)
    assert {"pyproject.toml", "README.md", "backend/chainlens/__init__.py"} <= context
    assert "backend/chainlens/web/static/viewer/viewer.js" in context
    assert not [p for p in context if p.startswith(".venv") or "node_modules" in p.split("/")]
    assert not [p for p in context if p.startswith(("tests/", "frontend/", ".git/"))]


def test_pip_install_non_editable_serves_page_and_docs(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # Dependencies come from the test environment (no second torch); chainlens itself is
    # installed from the source tree, as a regular (non-editable) package.
    site = sysconfig.get_paths()["purelib"]
    target_site = subprocess.run(
        [str(py), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(target_site, "deps.pth").write_text(site + "\n")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    wheel = next(wheels.glob("chainlens-*.whl"))
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True
    )
    where = subprocess.run(
        [str(py), "-c", "import chainlens;print(chainlens.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(target_site), where
    with serve(python=str(py), cwd=str(tmp_path)) as base:
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "chainlens" in page.text
        assert httpx.get(base + "/docs").status_code == 200
        assert httpx.get(base + "/api/v1/examples").json()
