"""Verify a model bundle's manifest (and, when given, that its metadata matches the image labels).

Usage: python -m deploy.verify_bundle DIR [--model-name N] [--model-version V] [--data-sha256 H]

The Dockerfile runs this during the build, so an image never carries a bundle whose files were
changed after packaging, nor labels that name a different model than the one inside.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.bundle import METADATA_FILE, verify_bundle
from core.cli import entry_point, step
from core.errors import BundleIntegrityError


def check_labels(metadata: dict[str, object], expected: dict[str, str]) -> None:
    """Raise when a label differs from the bundle's metadata, or is missing where the bundle has it.

    A build without the build arguments would ship an image whose labels name no model (the
    pipeline's image once did): that stops the build as surely as labels naming another model.
    """
    for key, want in expected.items():
        have = "" if metadata.get(key) is None else str(metadata.get(key))
        if not want and have:
            raise BundleIntegrityError(
                f"the build gives no {key} label, the bundle says {have!r}: build with the "
                "bundle's build arguments (make image, or make image-args for a CI build)"
            )
        if want and have != want:
            raise BundleIntegrityError(
                f"bundle metadata {key} is {metadata.get(key)!r}, the build says {want!r}; "
                "the image labels would name a different model than the one inside"
            )


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--model-name", default="")
    parser.add_argument("--model-version", default="")
    parser.add_argument("--data-sha256", default="")
    args = parser.parse_args(argv)
    with step(f"verify bundle {args.bundle}"):
        files = verify_bundle(args.bundle)
        metadata = json.loads((args.bundle / METADATA_FILE).read_text())
        check_labels(
            metadata,
            {
                "model_name": args.model_name,
                "model_version": args.model_version,
                "data_sha256": args.data_sha256,
            },
        )
    print(
        f"model {metadata.get('model_name')} version {metadata.get('model_version')}: "
        f"{len(files)} files match the manifest"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
