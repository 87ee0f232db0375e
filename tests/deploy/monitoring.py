"""Debian's prometheus and prometheus-alertmanager as plain processes on 127.0.0.1 for tests."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.net import free_port


@dataclass
class Process:
    """A started server: its URL, process and log file."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        # Not a skip: .ci/run installs them, so their absence is a broken set-up.
        pytest.fail(f"{name} not found: apt-get install prometheus prometheus-alertmanager")
    return found


def _start(argv: list[str], url: str, ready: str, log: Path) -> Process:
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    process = Process(url, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{argv[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + ready, timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.stop()
    pytest.fail(f"{argv[0]} not ready in 60 s:\n{log.read_text()[-3000:]}")


def start_prometheus(folder: Path, config: dict[str, Any]) -> Process:
    """Write `config` as prometheus.yml into `folder` and start Prometheus on a free port."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    argv = [
        _binary("prometheus"),
        f"--config.file={path}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return _start(argv, f"http://127.0.0.1:{port}", "/-/ready", folder / "prometheus.log")


def start_alertmanager(folder: Path, config: Path) -> Process:
    """Start Alertmanager with `config` on a free port (no clustering)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        _binary("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return _start(argv, f"http://127.0.0.1:{port}", "/-/ready", folder / "alertmanager.log")


def wait_scraped(prometheus: Process, job: str, targets: int, timeout: float = 60) -> None:
    """Wait until Prometheus has scraped every target of `job` successfully at least once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = httpx.get(
            prometheus.url + "/api/v1/query", params={"query": f'up{{job="{job}"}} == 1'}
        ).json()["data"]["result"]
        if len(result) >= targets:
            return
        time.sleep(0.5)
    pytest.fail(f"Prometheus did not scrape {targets} {job} targets in {timeout} s")
