"""`make serve`: verify the bundle, then run uvicorn on the app factory.

Usage: python -m serving.serve [--config config.yaml]
Host, port, workers, bundle and log URL come from the environment (core/settings.py). The bundle is
verified here first, so a bad one stops start-up with one line and exit code 5 before any worker
starts. With MODEL_URI=models:/<registered model>@<alias>, the bundle is first built from that
registry version into MODEL_BUNDLE (the same `make package` step), so the workers still load a
verified bundle and never call the registry at request time.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from core.bundle import verify_bundle
from core.cli import entry_point
from core.config import Config, load_config
from core.errors import ConfigError
from core.settings import Settings, get_settings

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
