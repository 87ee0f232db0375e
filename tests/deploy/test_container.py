"""The real image: built once per session with `make image`'s code, run with podman as the manifests run it.

Non-root (UID 10001), read-only root file system with a /tmp tmpfs, every capability dropped, no
new privileges, published on 127.0.0.1 only. Nothing here is skipped without podman: the tests
fail and say how to install it (.ci/run does, with apt).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from core.bundle import MODEL_FILE, REFERENCE_FILE, load_bundle, write_bundle
from core.config import Config
from core.frames import feature_frame, request_records
from core.io import sha256_file
from core.net import free_port
from core.prediction_log import read_predictions
from deploy.containers import container_env, run_argv
from tests.conftest import CHURN_CONFIG
from training.compile import model_files
from validation.profile import build_reference, reference_files

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
TAG = "model-service:pytest"
BUILDAH = ("--engine", "buildah")
LABELS = {
    "io.github.mlops-template.model.name": "model_name",
    "io.github.mlops-template.model.version": "model_version",
    "io.github.mlops-template.data.sha256": "data_sha256",
}


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run podman with our containers.conf; raise with its output when `check` and it fails."""
    proc = subprocess.run(
        ["podman", *args],
        env=container_env(ROOT),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def build(bundle: Path, tag: str) -> subprocess.CompletedProcess[str]:
    """What `make image MODEL_BUNDLE=bundle IMAGE_TAG=tag` runs, with buildah, on the churn fixture."""
    return subprocess.run(
        # buildah even where a Docker engine answers: podman runs what buildah builds (same storage).
        [
            sys.executable,
            "-m",
            "deploy.build_image",
            "--bundle",
            str(bundle),
            "--tag",
            tag,
            "--config",
            str(CHURN_CONFIG),
            *BUILDAH,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


@pytest.fixture(scope="session")
def image_bundle(
    trained_bundle: Path,
    config: Config,
    default_frame: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The session's trained bundle as `make package` writes it: the data hash, the drift
    reference and the compiled form with its probes, so the image is the slim numpy one a
    compiled model ships in. With the hash every label is set.
    """
    bundle = load_bundle(trained_bundle)
    metadata = {**bundle.metadata, "data_sha256": sha256_file(config.data_path)}
    scores = bundle.pipeline.predict_proba(feature_frame(default_frame, config.contract))[:, 1]
    reference, profile = build_reference(default_frame, scores, config.contract)
    target = tmp_path_factory.mktemp("image") / "bundle"
    files = {**reference_files(reference, profile), **model_files(bundle.pipeline, config.contract)}
    return write_bundle(target, bundle.pipeline, metadata, files)


@pytest.fixture(scope="session")
def image(image_bundle: Path) -> str:
    """The image, built once per test session (the layer cache keeps later sessions short)."""
    for tool in ("podman", "buildah"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is not installed: the container tests build and run the real image; "
                "install the container tools with `.ci/run --apt-only` (as root)"
            )
    started = time.monotonic()
    proc = build(image_bundle, TAG)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"image {TAG} built in {time.monotonic() - started:.0f} s")
    return TAG


@dataclass
class Container:
    """A detached container of the image, published on 127.0.0.1:port."""

    name: str
    url: str

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = podman("inspect", "--format", "{{.State.Running}}", self.name).stdout.strip()
            if state != "true":
                raise AssertionError(f"the container stopped before /ready:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready within {timeout:.0f} s:\n{self.logs()}")

    def stop(self, timeout: int = 30) -> int:
        """SIGTERM (what Kubernetes sends), wait; the container's exit code."""
        podman("stop", f"--time={timeout}", self.name, timeout=timeout + 30)
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout)


@pytest.fixture
def start(image: str) -> Iterator[Any]:
    """Start hardened containers of the image; every one is removed afterwards."""
    names: list[str] = []

    def run(env: dict[str, str] | None = None, volumes: tuple[str, ...] = ()) -> Container:
        name = f"pytest-{uuid.uuid4().hex[:10]}"
        port = free_port()
        names.append(name)
        # The image listens on 0.0.0.0, so it refuses to start without API_KEY or AUTH=off.
        env = {"AUTH": "off", **(env or {})}
        podman(*run_argv(image, name=name, port=port, env=env, volumes=volumes)[1:])
        return Container(name, f"http://127.0.0.1:{port}")

    yield run
    for name in names:
        podman("rm", "--force", name, check=False)


def run_once(
    image: str, *, env: dict[str, str] | None = None, volumes: tuple[str, ...] = ()
) -> Any:
    """Run the image in the foreground to its exit; the CompletedProcess."""
    name = f"pytest-{uuid.uuid4().hex[:10]}"
    try:
        # Without systemd, podman prints two lines about periodic health checks; this run needs none.
        argv = run_argv(
            image,
            name=name,
            env={"AUTH": "off", **(env or {})},
            volumes=volumes,
            detach=False,
            extra=("--no-healthcheck",),
        )
        return podman(*argv[1:], check=False)
    finally:
        podman("rm", "--force", name, check=False)


def stage(bundle: Path, reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m deploy.stage ARGS` (what `make smoke` / `make stage` run) on `bundle`."""
    return subprocess.run(
        [sys.executable, "-m", "deploy.stage", *args],
        cwd=ROOT,
        env={**container_env(ROOT), "MODEL_BUNDLE": str(bundle), "REPORTS_DIR": str(reports)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def tampered_copy(bundle: Path, target: Path) -> Path:
    """A copy of the bundle whose model file no longer matches its manifest (one byte added)."""
    shutil.copytree(bundle, target)
    with (target / MODEL_FILE).open("ab") as model:
        model.write(b"\0")
    return target


def test_the_labels_name_the_bundle_inside_and_the_commit(image: str, image_bundle: Path) -> None:
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    labels = inspected["Labels"]
    metadata = json.loads((image_bundle / "bundle.json").read_text())
    assert (image_bundle / REFERENCE_FILE).is_file()
    for label, key in LABELS.items():
        assert labels[label] == str(metadata[key]), label
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == head
    assert inspected["User"] == "10001:10001"
    assert inspected["Healthcheck"]["Test"] == ["CMD", "python", "-m", "deploy.healthcheck"]


def test_the_hardened_container_passes_the_smoke_test_and_its_healthcheck(
    start: Any, image_bundle: Path
) -> None:
    container = start()
    container.wait_ready()
    smoke = stage(
        image_bundle,
        image_bundle.parent / "reports",
        "--url",
        container.url,
        "--config",
        str(CHURN_CONFIG),
    )
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr + container.logs()
    assert podman("healthcheck", "run", container.name, check=False).returncode == 0, (
        container.logs()
    )
    uid = podman("exec", container.name, "id", "-u").stdout.strip()
    assert uid == "10001"
    write = podman("exec", container.name, "touch", "/app/x", check=False)
    assert write.returncode != 0, "the root file system must be read-only"
    assert container.stop() == 0, container.logs()


def test_a_tampered_bundle_is_refused_by_the_build(
    image: str, image_bundle: Path, tmp_path: Path
) -> None:
    tampered = tampered_copy(image_bundle, tmp_path / "bundle")
    proc = build(tampered, f"{TAG}-tampered")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{MODEL_FILE} has sha256" in output, output[-3000:]
    assert podman("image", "exists", f"{TAG}-tampered", check=False).returncode != 0


def test_a_tampered_bundle_is_refused_at_start_with_exit_5(
    image: str, image_bundle: Path, tmp_path: Path
) -> None:
    # The build refuses one (above); a bundle changed under a running image is mounted over it.
    tampered = tampered_copy(image_bundle, tmp_path / "bundle")
    tampered.chmod(0o755)
    for file in tampered.iterdir():
        file.chmod(0o644)
    proc = run_once(image, volumes=(f"{tampered}:/app/bundle:ro",))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: ") and MODEL_FILE in proc.stderr


def test_model_uri_in_the_container_is_one_clear_error(image: str) -> None:
    proc = run_once(image, env={"MODEL_URI": "models:/any@production"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MODEL_URI="), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_sigterm_under_load_loses_no_logged_prediction(
    start: Any, config: Config, default_frame: pd.DataFrame, tmp_path: Path
) -> None:
    # The log lives outside the container (a volume), so it can be read after the container is gone.
    folder = tmp_path / "log"
    folder.mkdir()
    os.chown(folder, 10001, 10001)
    container = start(
        env={"PREDICTION_LOG_URL": "sqlite:////data/predictions.db"},
        volumes=(f"{folder}:/data",),
    )
    container.wait_ready()
    records = request_records(default_frame.head(64), config.contract)
    answered: list[str] = []

    async def client_loop(k: int, client: httpx.AsyncClient) -> None:
        i = k
        while True:
            try:
                response = await client.post("/predict", json=records[i % len(records)])
            except httpx.TransportError:
                return  # the service has closed: shutdown reached this client
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200:
                answered.append(response.json()["request_id"])
            i += 16

    async def load() -> None:
        async with httpx.AsyncClient(base_url=container.url, timeout=30) as client:
            tasks = [asyncio.create_task(client_loop(k, client)) for k in range(16)]
            await asyncio.sleep(2)
            podman("kill", "--signal=TERM", container.name)
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    asyncio.run(load())
    podman("wait", container.name, timeout=60)
    code = podman("inspect", "--format", "{{.State.ExitCode}}", container.name).stdout.strip()
    assert code in ("0", "143"), container.logs()
    assert len(answered) > 50
    logged = read_predictions(f"sqlite:///{folder}/predictions.db")
    missing = set(answered) - set(logged["request_id"])
    assert not missing, f"{len(missing)} answered predictions were not logged"


def test_make_stage_builds_and_runs_the_container_when_podman_is_here(
    image: str, image_bundle: Path
) -> None:
    proc = stage(image_bundle, image_bundle.parent / "stage-reports", "--config", str(CHURN_CONFIG))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # docker where an engine answers (GitHub's runners), else podman (these machines).
    assert re.search(
        r"service started in a (podman|docker) container of model-service:stage", proc.stdout
    )
    report = json.loads(
        (image_bundle.parent / "stage-reports" / "stage" / "smoke.json").read_text()
    )
    assert report["passed"] is True
    assert {
        "name": "SIGTERM stops the service with exit code 0",
        "ok": True,
        "detail": 0,
    } in report["checks"]
