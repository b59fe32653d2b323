"""The package: a wheel built from the checkout, installed into a fresh virtual environment, run from elsewhere.

Offline and fast: the wheel is built with the main environment's setuptools
(``--no-build-isolation``), and the new environment sees the main one's
packages through a ``.pth`` file (never the checkout: ``memory`` must come
from the wheel), so installing it with ``--no-deps`` downloads nothing.
``pip install --dry-run --no-index`` of the same wheel into the main
environment proves its requirements hold there as installed: nothing would
be fetched or replaced (torch stays the CPU build the README pins).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import anyio
import pytest

from memory.backends.onnx_model import cache_dir
from memory.backends.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["memory", "pages", "ui", "assets", "scenarios", "samples", ".streamlit"]
FILES = ["app.py", "pyproject.toml", "requirements.txt", "README.md"]


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout's files (the build leaves nothing in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in FILES:
        shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, src, cwd=src)
    [built] = out.glob("memory_lab-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; the main environment's packages reachable through a .pth file."""
    folder = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", folder, cwd=folder)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(folder), "platbase": str(folder)}))
    (purelib / "_main_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(folder / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", wheel, cwd=folder)
    return folder


def _env(tmp: Path, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """No checkout on the path, defaults for data from the user's folders (here: a temp home)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEMLAB_DATA_DIR")}
    return {
        **env,
        "HOME": str(tmp / "home"),
        "XDG_DATA_HOME": str(tmp / "xdg-data"),
        "REDIS_URL": settings.redis_url,
        "MEMLAB_MODEL_CACHE": str(cache_dir()),  # the graph `make install` exported (else the first load does)
        "MEMLAB_UPKEEP": "inline",
    }


def test_the_wheel_holds_the_engine_and_the_app(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    engine = {str(p.relative_to(ROOT)) for p in (ROOT / "memory").rglob("*.py")}
    assert engine <= names, f"modules missing from the wheel (add their package to pyproject.toml): {engine - names}"
    app = {"app.py", ".streamlit/config.toml", "assets/icon.png", "samples/recall_sample.json"}
    app |= {str(p.relative_to(ROOT)) for d in ("pages", "ui", "scenarios") for p in (ROOT / d).glob("*.*")}
    assert {f"memory_lab_app/{n}" for n in app if "__pycache__" not in n} <= names
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "Requires-Dist: torch==2.13.0" in metadata, "the CPU build's pin travels with the package"
    assert (
        "memory-lab = memory.tools.cli:entry"
        in zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/entry_points.txt").decode()
    )


def test_its_requirements_hold_in_the_main_environment_as_installed(wheel, tmp_path):
    """Nothing to download or replace: with no index, pip would install the package alone (torch untouched)."""
    report = tmp_path / "report.json"
    _run(
        sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--ignore-installed", "--no-deps",
        "--report", report, wheel, cwd=tmp_path,
    )  # fmt: skip
    out = _run(sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", wheel, cwd=tmp_path)
    would = [line for line in out.splitlines() if line.startswith("Would install")]
    assert would == ["Would install memory-lab-0.1.0"], out
    import torch

    assert torch.__version__.endswith("+cpu"), torch.__version__
    assert json.loads(report.read_text())["install"][0]["metadata"]["name"] == "memory-lab"


def test_memory_lab_runs_from_a_fresh_venv_outside_the_checkout(venv, settings, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env(tmp_path, settings)
    python, command = venv / "bin" / "python", venv / "bin" / "memory-lab"
    where = _run(
        python,
        "-c",
        "import memory, memory.paths as p; print(memory.__file__); print(p.app_root())",
        cwd=elsewhere,
        env=env,
    )
    module, app_root = where.split()
    assert module.startswith(str(venv)) and app_root.startswith(str(venv)), "the wheel's files, not the checkout's"
    statuses = json.loads(_run(command, "doctor", "--json", cwd=elsewhere, env=env))
    assert [s["name"] for s in statuses if not s["ok"]] == [], statuses
    assert {s["name"]: s["location"] for s in statuses}["Chroma"] == str(
        tmp_path / "xdg-data" / "memory-lab" / "chroma"
    )
    _run(
        command,
        "chat",
        "--user",
        "pia",
        "--session",
        "s1",
        "--strategy",
        "facts",
        "My name is Pia.",
        cwd=elsewhere,
        env=env,
    )
    reply = _run(
        command,
        "chat",
        "--user",
        "pia",
        "--session",
        "s2",
        "--strategy",
        "facts",
        "What is my name?",
        cwd=elsewhere,
        env=env,
    )
    assert "Pia" in reply, reply
    assert not (elsewhere / "data").exists() and (tmp_path / "xdg-data" / "memory-lab" / "chroma").is_dir()

    from mcp import Client, StdioServerParameters

    async def tools() -> set[str]:
        async with Client(StdioServerParameters(command=str(command), args=["mcp"], env=env, cwd=str(elsewhere))) as c:
            return {t.name for t in (await c.list_tools()).tools}

    assert "get_context" in anyio.run(tools)


def test_memory_lab_run_serves_the_installed_dashboard(venv, settings, tmp_path):
    from .browser_app import CHROMIUM, launch

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(
        [str(venv / "bin" / "memory-lab"), "run", "--port", str(port)],
        cwd=elsewhere,
        env={**_env(tmp_path, settings), "MEMLAB_DATA_DIR": "relative-data"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(url + "_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-2000:]
                time.sleep(0.3)
        if CHROMIUM is None:
            pytest.skip("Chromium is not installed: the served page is not opened")
        sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_page()
                page.goto(url + "vector_memory?user=pia&session=s1")
                page.get_by_role("heading", name="Vector memory", level=1).wait_for(timeout=120_000)
                assert page.locator("[data-testid=stException]").count() == 0
            finally:
                browser.close()
        assert (elsewhere / "relative-data").is_dir(), "a relative MEMLAB_DATA_DIR means the folder it was typed in"
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)
        log.close()
