"""Serving fixtures: a config with small limits, real uvicorn processes, a real PostgreSQL server."""

from __future__ import annotations

import copy
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.net import free_port
from serving.serve import uvicorn_argv
from tests.conftest import CHURN_CONFIG

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key-0123456789"


def serving_config(tmp: Path, raw: dict[str, Any], **serving: Any) -> Path:
    """Write the churn fixture config with small serving limits (and `serving` overrides) into tmp."""
    raw = copy.deepcopy(raw)
    raw["data"]["path"] = str(CHURN_CONFIG.parent / raw["data"]["path"])
    raw["serving"] = {"max_batch": 5, "max_body_bytes": 20_000, **serving}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@dataclass
class Server:
    """A uvicorn process serving the app factory (what `python -m serving.serve` runs)."""

    url: str
    proc: subprocess.Popen[bytes]
    output: Path
    log_url: str

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


def start_server(
    tmp: Path,
    *,
    bundle: Path,
    config: Path,
    log_url: str | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
    serve_module: bool = False,
    argv_prefix: list[str] | None = None,
) -> Server:
    """Start `uvicorn --factory serving.app:app_from_env` on a free port; wait for /ready.

    With `serve_module`, start `python -m serving.serve` instead (the image's command: it
    verifies the bundle first and reads the workers from WEB_CONCURRENCY). `argv_prefix` replaces
    `python -m uvicorn` (the rest of uvicorn's command line stays).
    """
    port = free_port()
    log_url = log_url or f"sqlite:///{tmp}/predictions.db"
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODEL_BUNDLE": str(bundle),
        "CONFIG_PATH": str(config),
        "PREDICTION_LOG_URL": log_url,
        **(env or {}),
    }
    output = tmp / f"uvicorn-{port}.log"
    argv = uvicorn_argv("127.0.0.1", port, 1)
    if argv_prefix is not None:
        argv = [*argv_prefix, *argv[3:]]
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.serve"] if serve_module else argv,
        cwd=ROOT,
        env=full_env,
        stdout=output.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", proc, output, log_url)
    if not wait:
        return server
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{server.text()[-3000:]}")
        try:
            if httpx.get(server.url + "/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"server not ready in 120 s:\n{server.text()[-3000:]}")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, trained_bundle: Path, raw_config: dict[str, Any]
) -> Iterator[Server]:
    """One server for the endpoint tests: small limits, API key on, SQLite log."""
    tmp = tmp_path_factory.mktemp("server")
    srv = start_server(
        tmp,
        bundle=trained_bundle,
        config=serving_config(tmp, raw_config),
        env={"API_KEY": API_KEY},
    )
    yield srv
    srv.stop()


def schemathesis(server: Server, *options: str, max_examples: int = 40) -> str:
    """Fuzz the running server from its /openapi.json: valid and invalid requests from the schema.

    No answer may be a 5xx, and a request that breaks the schema must be refused (4xx), not
    scored. Fails the test with schemathesis's report otherwise; returns that report.
    """
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error,negative_data_rejection",
            "--header",
            f"X-API-Key: {API_KEY}",
            "--max-examples",
            str(max_examples),
            "--workers",
            "1",
            "--seed",
            "7",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            *options,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "generated" in proc.stdout
    return proc.stdout


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server (Debian's postgresql) on a free port, as the postgres user."""
    bin_dir = _pg_bin()
    if bin_dir is None or shutil.which("runuser") is None or os.geteuid() != 0:
        # Not a skip: .ci/run installs postgresql, so its absence is a broken set-up.
        pytest.fail("needs root, runuser and Debian's postgresql (apt-get install postgresql)")
    # Not under pytest's tmp folder: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="pg-serving-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    shutil.chown(base, "postgres")
    shutil.chown(sock, "postgres")
    port = free_port()

    def as_postgres(*args: str) -> None:
        proc = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"{args[0]} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")

    as_postgres(
        str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
    )
    as_postgres(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(base / "server.log"),
        "-o",
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
        "-w",
        "start",
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def request_records(frame: Any, contract: Any, n: int, start: int = 0) -> list[dict[str, Any]]:
    """Rows of the default data as JSON request records (NaN → null, numpy → Python)."""
    rows = frame[contract.feature_names].iloc[start : start + n]
    out = []
    for row in rows.to_dict("records"):
        rec = {}
        for k, v in row.items():
            v = v.item() if hasattr(v, "item") else v
            rec[k] = None if isinstance(v, float) and v != v else v
        out.append(rec)
    return out


@pytest.fixture(scope="session")
def records(default_frame: Any, config: Any) -> list[dict[str, Any]]:
    """200 real records of the default data, as a client would send them."""
    return request_records(default_frame, config.contract, 200)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty prediction-log database: a SQLite file, or a new database on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/log.db"
    import psycopg

    server_url = request.getfixturevalue("postgres_url")
    name = f"log_{os.getpid()}_{free_port()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name
