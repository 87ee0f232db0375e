"""`make image`: build the service image from the Dockerfile and one model bundle.

Usage: python -m deploy.build_image [--bundle DIR] [--tag NAME] [--engine auto|docker|buildah]
       python -m deploy.build_image --args-only [--bundle DIR]   (`make image-args`)

With a Docker engine answering, this is `docker build`; otherwise `buildah bud` (daemonless, as
root). The bundle's model name, version and data hash and the git revision go in as build
arguments, so the image's labels name the model inside it (and the build's own bundle check fails
when they disagree). The bundle is checked against MODEL_DIGEST (the digest `make package`
recorded on the model version) first; that digest is a build argument too, a label, the image's
own MODEL_DIGEST, and what the build's check requires (without MODEL_DIGEST, outside CI, the
bundle's own digest is used, with a warning). Where no image registry answers, the base images the Dockerfile names are
made here first (`deploy.stand_ins`), kept in local storage and never pushed.
`--args-only` builds nothing: it prints the same build arguments and, under GitHub Actions, gives
them as the step output `build-args` (one KEY=VALUE a line), which the pipeline's
docker/build-push-action takes, so the image pushed from CI carries the same labels.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

from core.bundle import METADATA_FILE, check_settings_anchor
from core.cli import entry_point, github_output, step
from core.compiled import COMPILED_FILE
from core.errors import DeployError
from core.git import head_commit
from core.settings import get_settings
from deploy.containers import container_env, docker_answers, image_size
from deploy.stand_ins import local_base_args

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAG = "model-service:latest"
# The build context lets in build/bundle and this staging folder only (.dockerignore), so a bundle
# kept elsewhere is copied here first.
STAGED_BUNDLE = Path("build/image-bundle")
STAGED_CONFIG = Path("build/image-config/config.yaml")
# Bundle metadata key -> Dockerfile build argument (each one is also an image label).
LABEL_ARGS = {
    "model_name": "MODEL_NAME",
    "model_version": "MODEL_VERSION",
    "data_sha256": "DATA_SHA256",
}


def build_args(bundle: Path, revision: str) -> dict[str, str]:
    """The Dockerfile's build arguments for this bundle: its metadata and the git revision."""
    try:
        metadata = json.loads((bundle / METADATA_FILE).read_text())
    except FileNotFoundError:
        raise DeployError(
            f"{bundle / METADATA_FILE} not found: build the bundle first (make package) or set "
            "MODEL_BUNDLE"
        ) from None
    args = {arg: str(metadata.get(key) or "") for key, arg in LABEL_ARGS.items()}
    # A model that compiled is served with numpy alone; one that did not needs scikit-learn.
    runtime = "numpy" if (bundle / COMPILED_FILE).is_file() else "sklearn"
    return {**args, "REVISION": revision, "MODEL_RUNTIME": runtime}


def context_bundle(bundle: Path, root: Path) -> str:
    """The bundle's path inside the build context, copying it into the context when it is outside."""
    bundle = bundle.resolve()
    default = (root / "build" / "bundle").resolve()
    if bundle == default:
        return "build/bundle"
    staged = root / STAGED_BUNDLE
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(bundle, staged)
    return STAGED_BUNDLE.as_posix()


def context_config(config: Path, root: Path) -> str:
    """The config's path inside the build context, staging it there unless .dockerignore lets it in.

    The root config.yaml and the examples' configs are in the context as they are; any other
    config of the repository (a test fixture's) is copied to build/image-config/config.yaml.
    """
    try:
        relative = config.resolve().relative_to(root.resolve())
    except ValueError:
        raise DeployError(
            f"{config} is outside {root}: the image can only take a config from the build context"
        ) from None
    if (relative.match("config.yaml") and len(relative.parts) == 1) or relative.match(
        "examples/*/config.yaml"
    ):
        return relative.as_posix()
    staged = root / STAGED_CONFIG
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config, staged)
    return STAGED_CONFIG.as_posix()


def image_build_args(bundle: Path, root: Path, config: Path | None = None) -> dict[str, str]:
    """Every build argument of one image: the labels' values and where the bundle (and config) sit."""
    args = build_args(bundle, head_commit(root))
    # The digest recorded at packaging (MODEL_DIGEST), checked here and again inside the build; it
    # becomes a label and the image's own MODEL_DIGEST.
    args["BUNDLE_DIGEST"] = check_settings_anchor(bundle, get_settings())
    args["BUNDLE_DIR"] = context_bundle(bundle, root)
    if config is not None:
        args["CONFIG"] = context_config(config, root)
    return args


def pick_engine(wanted: str) -> str:
    """`docker` where an engine answers, else `buildah`; refuse when neither can build."""
    if wanted == "docker" or (wanted == "auto" and docker_answers()):
        return "docker"
    if shutil.which("buildah") is None:
        raise DeployError(
            "no container engine: no Docker daemon answers and buildah is not installed "
            "(.ci/run installs buildah, podman and runc with apt)"
        )
    return "buildah"


def build_command(
    engine: str,
    dockerfile: Path,
    tag: str,
    args: dict[str, str],
    root: Path,
    no_cache: bool = False,
) -> list[str]:
    """The build command line; buildah keeps HEALTHCHECK only in the docker format."""
    flags = [f"--build-arg={key}={value}" for key, value in args.items()]
    flags += ["--no-cache"] if no_cache else []
    if engine == "docker":
        return ["docker", "build", "-f", str(dockerfile), "-t", tag, *flags, str(root)]
    return [
        "buildah",
        "bud",
        "--pull=never",
        "--layers",
        "--format",
        "docker",
        "-f",
        str(dockerfile),
        "-t",
        tag,
        *flags,
        str(root),
    ]


def build_image(
    bundle: Path,
    tag: str = DEFAULT_TAG,
    dockerfile: Path | None = None,
    engine: str = "auto",
    config: Path | None = None,
    no_cache: bool = False,
) -> float:
    """Build `tag` from the Dockerfile with `bundle` (and `config`) baked in; the build's seconds."""
    dockerfile = dockerfile or ROOT / "Dockerfile"
    root = dockerfile.resolve().parent
    args = image_build_args(bundle, root, config)
    chosen = pick_engine(engine)
    env = container_env(root)
    if chosen == "buildah":
        args.update(local_base_args(dockerfile, root, env))
    started = time.monotonic()
    proc = subprocess.run(
        build_command(chosen, dockerfile, tag, args, root, no_cache), env=env, check=False
    )
    if proc.returncode != 0:
        raise DeployError(
            f"{chosen} could not build {tag} (exit {proc.returncode}); its output is above"
        )
    return time.monotonic() - started


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="default: MODEL_BUNDLE")
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile")
    parser.add_argument("--engine", choices=["auto", "docker", "buildah"], default="auto")
    parser.add_argument(
        "--config", type=Path, default=None, help="config baked in (default: the Dockerfile's)"
    )
    parser.add_argument(
        "--args-only",
        action="store_true",
        help="build nothing: print the build arguments (and give them as the step output build-args)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    bundle = args.bundle or settings.model_bundle
    if args.args_only:
        values = image_build_args(bundle, args.dockerfile.resolve().parent, args.config)
        text = "\n".join(f"{key}={value}" for key, value in values.items())
        github_output(settings.github_output, **{"build-args": text})
        print(text)
        return 0
    with step(f"image {args.tag} from {bundle}"):
        build_image(bundle, args.tag, args.dockerfile, args.engine, args.config)
    size = image_size(args.tag, container_env(ROOT))
    if size is not None:
        print(f"image {args.tag}: {size / 1e6:.0f} MB unpacked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
