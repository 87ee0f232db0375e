"""`make serve`: verify the bundle, then run uvicorn on the app factory.

Usage: python -m serving.serve [--config config.yaml]
Host, port, workers, bundle and log URL come from the environment (core/settings.py). The bundle is
verified here first, so a bad one stops start-up with one line and exit code 5 before any worker
starts. With MODEL_URI=models:/<registered model>@<alias>, the bundle is first built from that
registry version into MODEL_BUNDLE (the same `make package` step), so the workers still load a
verified bundle and never call the registry at request time.

With several workers, the workers share a fresh folder for their metrics (PROMETHEUS_MULTIPROC_DIR,
removed on exit; a folder you set yourself is emptied first), so /metrics counts all of them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def shared_metrics_dir(workers: int) -> Iterator[str | None]:
    """Give several workers one empty metrics folder for the run (none for one worker)."""
    if workers <= 1:
        yield None
        return
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        # prometheus_client's rule: the folder starts empty, or old counts are added in.
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.db"):
            old.unlink()
        yield given
        return
    made = tempfile.mkdtemp(prefix="serving-metrics-")
    os.environ[MULTIPROC_ENV] = made
    try:
        yield made
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(made, ignore_errors=True)


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
    config = load_config(settings.config_path)
    if settings.model_uri:
        bundle_from_registry(config, settings, settings.model_uri)
    verify_bundle(settings.model_bundle)

    import uvicorn

    print(
        f"serving {settings.model_bundle} on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''}; docs at /docs)",
        flush=True,
    )
    with shared_metrics_dir(settings.workers):
        uvicorn.run(
            "serving.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
