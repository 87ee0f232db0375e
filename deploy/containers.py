"""The container tools' environment on machines without a Docker engine (buildah, podman, runc).

Our commands name their own containers.conf with CONTAINERS_CONF; nothing under /etc changes.
It says two things these machines need: runc (crun refuses the kernel's hybrid cgroups) and
default rlimits no higher than the machine's hard limits (podman's own defaults are higher,
and setrlimit then fails inside every container).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

CONF = Path("build/containers/containers.conf")
# nproc at the hard limit itself fails too (measured); the service needs a few dozen threads.
NPROC = 4096


def containers_conf(root: Path) -> Path:
    """Write (or rewrite) the containers.conf for this machine under root/build and return it."""
    _, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = 65536 if nofile == resource.RLIM_INFINITY else nofile
    text = (
        "# Written by deploy/containers.py for this machine; named by CONTAINERS_CONF.\n"
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={NPROC}:{NPROC}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    path = root / CONF
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def container_env(root: Path) -> dict[str, str]:
    """The environment for buildah and podman: our containers.conf, runc, the docker format."""
    return {
        **os.environ,
        "CONTAINERS_CONF": str(containers_conf(root)),
        "BUILDAH_RUNTIME": "runc",
        # The OCI format drops HEALTHCHECK; the docker format keeps it.
        "BUILDAH_FORMAT": "docker",
    }


def docker_answers() -> bool:
    """True when a Docker client is installed and its daemon answers (a client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def image_exists(image: str, env: dict[str, str]) -> bool:
    """True when local container storage holds `image` (buildah and podman share it)."""
    proc = subprocess.run(
        ["podman", "image", "exists", image], env=env, capture_output=True, check=False
    )
    return proc.returncode == 0


def image_size(image: str, env: dict[str, str]) -> int | None:
    """The image's unpacked size in bytes, from whichever tool holds it (None if none does)."""
    for tool in ("docker", "podman"):
        if shutil.which(tool) is None or (tool == "docker" and not docker_answers()):
            continue
        proc = subprocess.run(
            [tool, "image", "inspect", "--format", "{{.Size}}", image],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0 and proc.stdout.strip().isdigit():
            return int(proc.stdout.strip())
    return None


# How the manifests run the service (infra/k8s/base/deployment.yaml's securityContext): UID 10001,
# read-only root file system with /tmp writable, every capability dropped, no privilege gain.
HARDENED = [
    "--user=10001:10001",
    "--read-only",
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
]


def runtime() -> str | None:
    """The tool that runs the images `make image` builds: docker with an engine, else podman."""
    if docker_answers():
        return "docker"
    return "podman" if shutil.which("podman") and shutil.which("buildah") else None


def run_argv(
    image: str,
    *,
    name: str,
    tool: str = "podman",
    port: int | None = None,
    env: dict[str, str] | None = None,
    volumes: tuple[str, ...] = (),
    detach: bool = True,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """`podman run` (or `docker run`) of the image as the manifests run it, on 127.0.0.1:port only."""
    argv = [tool, "run", f"--name={name}", *HARDENED]
    argv += ["--detach"] if detach else []
    argv += [f"--publish=127.0.0.1:{port}:8000"] if port is not None else []
    argv += [f"--env={key}={value}" for key, value in (env or {}).items()]
    argv += [f"--volume={volume}" for volume in volumes]
    return [*argv, *extra, image]
