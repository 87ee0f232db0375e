"""`make serve`: verify the bundle, then run uvicorn on the app factory.

Usage: python -m serving.serve [--config config.yaml]
Host, port, workers, bundle and log URL come from the environment (core/settings.py). The bundle is
verified here first, so a bad one stops start-up with one line and exit code 5 before any worker
starts.
"""

from __future__ import annotations

import argparse
import os

from core.bundle import verify_bundle
from core.cli import entry_point
from core.config import load_config
from core.settings import get_settings


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
    load_config(settings.config_path)
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
