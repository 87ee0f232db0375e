"""`make serve`: verify the bundle, then run uvicorn on the app factory.

Usage: python -m serving.serve [--config config.yaml]
Host, port, workers, bundle and log URL come from the environment (core/settings.py). The bundle is
checked here first against MODEL_DIGEST (core.bundle.check_anchor: the manifest and the digest
recorded at packaging), then the model against its probes, and the API key rule applied
(Settings.auth_key), so a bad bundle stops start-up with one line and exit code 5, and an empty
API_KEY with exit code 2, before any worker starts. Serving from the registry (MODEL_URI) is `make serve`'s job (orchestration/serve.py): it
builds the bundle first, then hands over to this command; the image has no training code.

With several workers, the workers share one new folder for their metrics (made under
PROMETHEUS_MULTIPROC_DIR or the temporary folder), so /metrics counts all of them. After the checks the process replaces itself with uvicorn (same pid).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from core.bundle import check_settings_anchor, read_metadata
from core.cli import entry_point
from core.config import load_config
from core.errors import ConfigError
from core.settings import Settings, get_settings
from serving.metrics import MULTIPROC_ENV, file_pid, process_alive
from serving.predictor import load_predictor
from serving.service import served_contract


def metrics_dir(workers: int, port: int) -> str | None:
    """A new private folder for this run's worker metrics (None, and no variable, for one worker).

    Made with mkdtemp (mode 0700, a name nobody can take first) under PROMETHEUS_MULTIPROC_DIR
    when that is set, else under the temporary folder; so it starts empty, as prometheus_client
    requires, and a second start on a busy port never touches the running service's counts.
    Folders of earlier runs on this port whose processes are all gone are removed.
    """
    if workers <= 1:
        # One process: its own registry. A folder set for it would be read unchecked, never emptied.
        os.environ.pop(MULTIPROC_ENV, None)
        return None
    parent = Path(os.environ.get(MULTIPROC_ENV) or tempfile.gettempdir())
    prefix = f"serving-metrics-{port}-"
    for old in parent.glob(prefix + "*"):
        if old.is_symlink() or not old.is_dir() or old.stat().st_uid != os.getuid():
            continue
        pids = [pid for f in old.iterdir() if (pid := file_pid(f.name)) is not None]
        if not any(process_alive(pid) for pid in pids):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=prefix, dir=parent)


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
        # Under Kubernetes' 30 s termination grace period, leaving time to write the log's rows.
        "--timeout-graceful-shutdown",
        "20",
    ]


def settings_from_args(argv: list[str] | None, description: str) -> Settings:
    """Parse `--config` into CONFIG_PATH (what the workers inherit) and return the settings."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=None, help="config file (default: CONFIG_PATH)")
    args = parser.parse_args(argv)
    if args.config:
        # Settings are the one reader of the environment; the workers inherit this value.
        os.environ["CONFIG_PATH"] = args.config
        get_settings.cache_clear()
    return get_settings()


@entry_point
def main(argv: list[str] | None = None) -> int:
    settings = settings_from_args(argv, __doc__.splitlines()[0])
    # A bad config or bundle stops here, once, with its exit code: uvicorn would restart workers
    # that exit with anything but its own start-up failure code.
    config = load_config(settings.config_path, check_estimator=False)
    if settings.model_uri:
        raise ConfigError(
            f"MODEL_URI={settings.model_uri} is read by `make serve` (python -m orchestration.serve), "
            "which builds MODEL_BUNDLE from the registry first; this command serves MODEL_BUNDLE "
            "only: unset MODEL_URI"
        )
    check_settings_anchor(settings.model_bundle, settings)
    auth = settings.auth_key()
    # The model against its probes: what every worker checks again.
    metadata = read_metadata(settings.model_bundle)
    load_predictor(settings.model_bundle, metadata, served_contract(metadata, config))
    folder = metrics_dir(settings.workers, settings.port)
    if folder is not None:
        os.environ[MULTIPROC_ENV] = folder
    print(
        f"serving {settings.model_bundle} on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''}; docs at /docs; "
        + ("authentication: API key" if auth else "authentication: OFF (no API key)")
        + ")",
        flush=True,
    )
    # Become uvicorn (same pid, so signals reach it): whatever the checks imported (scikit-learn
    # too, for a model that does not compile) is not kept by the process supervising the workers.
    os.execv(sys.executable, uvicorn_argv(settings.host, settings.port, settings.workers))
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
