"""`make serve`: verify the bundle, then run uvicorn on the app factory.

Usage: python -m serving.serve [--config config.yaml]
Host, port, workers, bundle and log URL come from the environment (core/settings.py). The bundle is
verified here first, so a bad one stops start-up with one line and exit code 5 before any worker
starts. With MODEL_URI=models:/<registered model>@<alias>, the bundle is first built from that
registry version into MODEL_BUNDLE (the same `make package` step), so the workers still load a
verified bundle and never call the registry at request time.

With several workers, the workers share one emptied folder for their metrics
(PROMETHEUS_MULTIPROC_DIR, or one per user and port under the temporary folder), so /metrics counts all of
them. After the checks the process replaces itself with uvicorn (same pid).
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import tempfile
from pathlib import Path

from core.bundle import verify_bundle
from core.cli import entry_point
from core.config import Config, load_config
from core.errors import ConfigError
from core.settings import Settings, get_settings
from serving.metrics import MULTIPROC_ENV

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[\w-]+)$")


def bundle_from_registry(config: Config, settings: Settings, uri: str) -> Path:
    """Build MODEL_BUNDLE from the registry version `models:/<name>@<alias>` names."""
    match = MODEL_URI.match(uri)
    if match is None:
        raise ConfigError(f"MODEL_URI {uri!r}: expected models:/<registered model>@<alias>")
    if match["name"] != config.mlflow.registered_model:
        raise ConfigError(
            f"MODEL_URI names model {match['name']!r}, but {config.source} registers "
            f"{config.mlflow.registered_model!r} (mlflow.registered_model)"
        )
    from training.api import package_candidate

    return package_candidate(config, settings, alias=match["alias"])


# The files prometheus_client writes per process (counter_123.db, gauge_livesum_123.db, ...). It
# reads every .db file in the folder, so a folder holding any other .db file is refused, not emptied.
PROMETHEUS_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_\d+\.db$")


def metrics_dir(workers: int, port: int) -> str | None:
    """The one metrics folder several workers share, emptied for this run (None for one worker).

    PROMETHEUS_MULTIPROC_DIR when set, else `<tmp>/serving-metrics-<uid>-<port>`: one service per
    user and port at a time, so emptying it never touches a running service's counts.
    prometheus_client's rule: the folder starts empty, or an earlier run's counts are added in.
    A folder that is a symbolic link or belongs to another user is refused (on a shared machine
    anyone can create a name under /tmp first).
    """
    if workers <= 1:
        return None
    given = os.environ.get(MULTIPROC_ENV)
    folder = Path(given or Path(tempfile.gettempdir()) / f"serving-metrics-{os.getuid()}-{port}")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError(
            f"metrics folder {folder} is a link or not this user's directory; set "
            f"{MULTIPROC_ENV} to a directory of your own"
        )
    others = sorted(f.name for f in folder.glob("*.db") if not PROMETHEUS_FILE.match(f.name))
    if others:
        # prometheus_client reads every .db file there at each scrape: /metrics would fail.
        raise ConfigError(
            f"metrics folder {folder} holds files that are not prometheus_client's "
            f"({', '.join(others[:3])}); set {MULTIPROC_ENV} to a folder of its own"
        )
    for old in folder.glob("*.db"):
        old.unlink()
    return str(folder)


def uvicorn_argv(host: str, port: int, workers: int) -> list[str]:
    """The uvicorn command line for the app factory (what `main` hands over to)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "serving.app:app_from_env",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "30",
    ]


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="config file (default: CONFIG_PATH)")
    args = parser.parse_args(argv)
    if args.config:
        # Settings are the one reader of the environment; the workers inherit this value.
        os.environ["CONFIG_PATH"] = args.config
        get_settings.cache_clear()
    settings = get_settings()
    # A bad config or bundle stops here, once, with its exit code: uvicorn would restart workers
    # that exit with anything but its own start-up failure code.
    config = load_config(settings.config_path)
    if settings.model_uri:
        bundle_from_registry(config, settings, settings.model_uri)
    verify_bundle(settings.model_bundle)
    folder = metrics_dir(settings.workers, settings.port)
    if folder is not None:
        os.environ[MULTIPROC_ENV] = folder
    print(
        f"serving {settings.model_bundle} on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''}; docs at /docs)",
        flush=True,
    )
    # Become uvicorn (same pid, so signals reach it): checking the config imported sklearn and
    # pandas, 150 MB that the process supervising the workers would otherwise keep.
    os.execv(sys.executable, uvicorn_argv(settings.host, settings.port, settings.workers))
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
