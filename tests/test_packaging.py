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
    assert doc["services"]["chainlens"]["ports"] == ["127.0.0.1:8000:8000"]
    gpu = doc["services"]["chainlens-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["environment"]["CHAINLENS_DEVICE"] == "cuda"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_dockerfile_uses_the_makefile_steps() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert "RUN make setup" in lines
    assert 'CMD ["make", "run"]' in lines
    makefile = (ROOT / "Makefile").read_text()
    assert "run: setup" in makefile and "test: setup" in makefile


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
