"""`make serve`: serve MODEL_BUNDLE, or first build it from the registry version MODEL_URI names.

Usage: python -m orchestration.serve [--config config.yaml]
With MODEL_URI=models:/<registered model>@<alias>, the bundle is built from that registry version
into MODEL_BUNDLE (the same `make package` step), so the workers still load a verified bundle and
never call the registry at request time. Then it hands over to `python -m serving.serve`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from core.bundle import bundle_digest
from core.cli import entry_point
from core.config import Config, load_config
from core.errors import ConfigError
from core.settings import Settings, get_settings
from serving import serve
from training.package import package_candidate

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
    return package_candidate(config, settings, alias=match["alias"])


@entry_point
def main(argv: list[str] | None = None) -> int:
    settings = serve.settings_from_args(argv, __doc__.splitlines()[0])
    if settings.model_uri:
        bundle = bundle_from_registry(
            load_config(settings.config_path), settings, settings.model_uri
        )
        # Built here from the registry, which recorded this digest: the workers check against it.
        os.environ["MODEL_DIGEST"] = bundle_digest(bundle)
        # The bundle is built: what serves it reads MODEL_BUNDLE alone and refuses MODEL_URI.
        del os.environ["MODEL_URI"]
        get_settings.cache_clear()
    return serve.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
