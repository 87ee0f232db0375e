"""Stand-in base images for machines that reach no image registry (made locally, never pushed).

The Dockerfile builds from one base, the Python image (uv comes from PyPI, hash-pinned, in the
Dockerfile's own dependency step). Where its registry does not resolve, this makes a look-alike and tags
it with the very name the Dockerfile uses, so the same Dockerfile builds with `--pull=never`:
Debian bookworm (debootstrap minbase from the apt mirror this machine uses) with Debian's python3.11
and pip, linked where the official image keeps python, plus this machine's extra CA certificates
(a TLS proxy signs PyPI's certificate here). That is why it must never be pushed.
It carries the label STAND_IN_LABEL and the recipe's version (STAND_IN_RECIPE). An image already in
local storage is used as it is, unless it is a stand-in of an older recipe: that one is made again.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
from pathlib import Path

from core.errors import DeployError
from deploy.containers import image_exists

STAND_IN_LABEL = "io.github.mlops-template.stand-in=true"
# Raised whenever the stand-in changes, so one made by an older recipe is made again (2: with pip,
# which the Dockerfile's dependency step runs, as the official image has it).
STAND_IN_RECIPE = "2"
RECIPE_KEY = "io.github.mlops-template.stand-in.recipe"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
LOCAL_CA = Path("/usr/local/share/ca-certificates")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ARG = re.compile(r"^ARG\s+(\w+)=(\S+)", re.M)


def image_args(dockerfile: Path) -> dict[str, str]:
    """The Dockerfile's ARG defaults that name a base image (the ones used in FROM)."""
    text = dockerfile.read_text()
    used = set(re.findall(r"^FROM\s+\$\{(\w+)\}", text, re.M))
    return {k: v for k, v in _ARG.findall(text) if k in used}


def base_images(dockerfile: Path) -> list[str]:
    """The external images the Dockerfile builds from (FROM lines, ARG defaults substituted)."""
    text = dockerfile.read_text()
    args = dict(_ARG.findall(text))
    images: list[str] = []
    for line in text.splitlines():
        if line.startswith("FROM "):
            ref = line.split()[1]
            ref = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), ref)
            if ":" in ref and ref not in images:
                images.append(ref)
    return images


def registry_host(image: str) -> str:
    """The registry host an image reference pulls from (Docker Hub for bare names)."""
    first = image.split("/")[0]
    return first if "/" in image and ("." in first or ":" in first) else "registry-1.docker.io"


def resolves(host: str) -> bool:
    """True when the host name resolves (no registry here resolves at all)."""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _run(argv: list[str], env: dict[str, str]) -> str:
    """Run one tool; on failure raise with the last lines it printed."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise DeployError(f"{' '.join(argv[:3])} … failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def apt_mirror() -> str:
    """The Debian mirror apt uses here (the first URIs line of debian.sources)."""
    if DEBIAN_SOURCES.exists():
        for line in DEBIAN_SOURCES.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return DEFAULT_MIRROR


def _full_name(image: str) -> str:
    """Docker's canonical name for a bare reference (python:3 -> docker.io/library/python:3)."""
    first = image.split("/")[0]
    if "/" in image and ("." in first or ":" in first):
        return image
    return f"docker.io/{image if '/' in image else 'library/' + image}"


def make_python_base(image: str, work: Path, env: dict[str, str]) -> None:
    """Bootstrap Debian bookworm with python3.11 and pip into `work` and import it as `image`."""
    if shutil.which("debootstrap") is None:
        raise DeployError("debootstrap is not installed (.ci/run installs it with apt)")
    rootfs = work / "rootfs"
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3.11,python3-pip,ca-certificates",
            "bookworm",
            str(rootfs),
            apt_mirror(),
        ],
        env,
    )
    for cert in LOCAL_CA.glob("*.crt"):
        shutil.copy2(cert, rootfs / "usr/local/share/ca-certificates" / cert.name)
    _run(["chroot", str(rootfs), "update-ca-certificates"], env)
    for name in ("python", "python3", "python3.11"):
        (rootfs / "usr/local/bin" / name).symlink_to("/usr/bin/python3.11")
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (rootfs / cache).glob("*"):
            if item.is_file():
                item.unlink()
    archive = work / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    changes = [
        f"ENV PATH={PATH}",
        "ENV LANG=C.UTF-8",
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        f"LABEL {STAND_IN_LABEL}",
        f"LABEL {RECIPE_KEY}={STAND_IN_RECIPE}",
        'CMD ["python3"]',
    ]
    flags = [f"--change={change}" for change in changes]
    _run(["podman", "import", *flags, str(archive), _full_name(image)], env)


def _label(image: str, key: str, env: dict[str, str]) -> str | None:
    """The value of one label of a local image (None when the image is not in local storage)."""
    proc = subprocess.run(
        ["podman", "image", "inspect", "--format", f'{{{{index .Labels "{key}"}}}}', image],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def is_stand_in(image: str, env: dict[str, str]) -> bool:
    """True when the local image carries STAND_IN_LABEL (made by this module, not pulled)."""
    key, _, value = STAND_IN_LABEL.partition("=")
    return _label(image, key, env) == value


def is_current(image: str, env: dict[str, str]) -> bool:
    """False for a stand-in made by an older recipe (one without pip, say); True for any other."""
    return not is_stand_in(image, env) or _label(image, RECIPE_KEY, env) == STAND_IN_RECIPE


def ensure_base(image: str, root: Path, env: dict[str, str]) -> str:
    """Make sure local storage holds `image`: as it is, pulled, or made here as a stand-in.

    Returns the reference to build from: `image`, or for a reference pinned by digest that no
    registry serves, its tag alone (a stand-in cannot carry the official image's digest).
    """
    present = image_exists(image, env) or image_exists(_full_name(image), env)
    if present and not is_current(image, env):
        print(f"base {image}: a stand-in of an older recipe; making it again", flush=True)
    elif present:
        made_here = is_stand_in(image, env)
        what = "the local stand-in made here earlier (never pushed)" if made_here else "as pulled"
        print(f"base {image}: in local storage, {what}", flush=True)
        return image
    if resolves(registry_host(image)):
        print(f"base {image}: pulling", flush=True)
        _run(["buildah", "pull", "--quiet", image], env)
        return image
    if "@" in image:
        tag = image.split("@", 1)[0]
        print(f"base {image}: no registry answers; building from {tag} instead", flush=True)
        return ensure_base(tag, root, env)
    print(
        f"base {image}: no registry answers; making a local stand-in (stays in local "
        "storage, never pushed)",
        flush=True,
    )
    (root / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root / "build", prefix="stand-in-") as work:
        make_python_base(image, Path(work), env)
    return image


def local_base_args(dockerfile: Path, root: Path, env: dict[str, str]) -> dict[str, str]:
    """Make (or find) every base image the Dockerfile needs; the build arguments that point its
    FROM lines at a local stand-in where the pinned reference (a digest) is not in local storage."""
    args: dict[str, str] = {}
    defaults = image_args(dockerfile)
    for image in base_images(dockerfile):
        used = ensure_base(image, root, env)
        for arg, default in defaults.items():
            if default == image and used != image:
                args[arg] = used  # a local stand-in of the pinned tag
    return args
