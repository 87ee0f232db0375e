"""The image: size, cold build, rebuild after a code-only change, and start to /ready in and out.

One run, figures as ratios of each other: the rebuild against the cold build (target: at most a
quarter, from the layer order), start to /ready in the hardened container against the same
command run here as a process (target: within 1.5x). The build runs in a copy of the build
context, so the code-only change (a comment in serving/) never touches the checkout. "Cold"
means no layer cache; uv's download cache (a build cache mount) stays warm.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.bundles import fit_bundle
from core.cli import table
from core.net import free_port
from deploy.build_image import build_image
from deploy.containers import container_env, image_size, run_argv, runtime
from deploy.stage import image_service

ROOT = Path(__file__).resolve().parents[1]
TAG = "model-service:bench"
CONTEXT = ["Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "config.yaml"]
TARGET_MB = 350


def _context(folder: Path) -> Path:
    """Copy what the build context lets in (.dockerignore) into `folder`."""
    for name in CONTEXT:
        shutil.copy2(ROOT / name, folder / name)
    for package in ("core", "serving", "deploy"):
        shutil.copytree(
            ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    # For the process outside the container (the image's PATH maps to .venv/bin); .dockerignore
    # keeps it out of the build.
    (folder / ".venv").symlink_to(ROOT / ".venv")
    return folder


def _bundle(folder: Path) -> Path:
    """Fit the default model once and write its bundle as `make package` does (compiled form and
    probes: the build then picks the numpy runtime users ship)."""
    from core.config import load_config
    from core.data import read_table

    config = load_config(ROOT / "config.yaml")
    metadata = {
        "model_name": config.mlflow.registered_model,
        "model_version": "bench",
        "threshold": 0.5,
        "contract": config.contract.model_dump(mode="json"),
    }
    return fit_bundle(folder / "bundle", config, read_table(ROOT / config.data.path), metadata)[0]


def _container_ready(tool: str, env: dict[str, str]) -> float:
    """Seconds from `run` to /ready of the hardened container."""
    name, port = f"bench-{uuid.uuid4().hex[:8]}", free_port()
    started = time.monotonic()
    argv = run_argv(
        TAG, name=name, tool=tool, port=port, env={"AUTH": "off"}, extra=("--no-healthcheck",)
    )
    subprocess.run(argv, env=env, check=True, capture_output=True)
    try:
        while time.monotonic() - started < 180:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("the container was not ready within 180 s")
    finally:
        subprocess.run([tool, "rm", "--force", name], env=env, capture_output=True, check=False)


def _process_ready(context: Path, bundle: Path, scratch: Path) -> float:
    """Seconds from start to /ready of the image's command run here as a process."""
    with image_service(
        context / "Dockerfile", bundle, context / "config.yaml", scratch, scratch / "server.log"
    ) as service:
        service.wait_ready()
        return service.ready_after


def main() -> int:
    tool = runtime()
    if tool is None:
        print("no container engine (docker or podman): nothing to measure")
        return 1
    env = container_env(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        folder = Path(tmp)
        (folder / "context").mkdir()
        context = _context(folder / "context")
        bundle = _bundle(folder)
        engine = "docker" if tool == "docker" else "buildah"
        cold = build_image(bundle, TAG, context / "Dockerfile", engine, no_cache=True)
        app = context / "serving" / "app.py"
        app.write_text(app.read_text() + "# a code-only change\n")
        rebuild = build_image(bundle, TAG, context / "Dockerfile", engine)
        inside = min(_container_ready(tool, env) for _ in range(2))
        outside = min(_process_ready(context, bundle, folder) for _ in range(2))
    size_mb = (image_size(TAG, env) or 0) / 1e6
    rows: list[dict[str, object]] = [
        {
            "figure": "image size, MB unpacked",
            "value": f"{size_mb:.0f}",
            "ratio": f"{size_mb / TARGET_MB:.2f} of the 350 MB target",
        },
        {"figure": "cold build, s", "value": f"{cold:.0f}", "ratio": "1.00"},
        {
            "figure": "rebuild after a code-only change, s",
            "value": f"{rebuild:.0f}",
            "ratio": f"{rebuild / cold:.2f} of cold (target <= 0.25)",
        },
        {"figure": "start to /ready outside, s", "value": f"{outside:.1f}", "ratio": "1.00"},
        {
            "figure": "start to /ready in the container, s",
            "value": f"{inside:.1f}",
            "ratio": f"{inside / outside:.2f} of outside (target <= 1.5)",
        },
    ]
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
