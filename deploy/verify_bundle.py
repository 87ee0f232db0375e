"""Verify a model bundle against its recorded digest (and that its metadata matches the image labels).

Usage: python -m deploy.verify_bundle DIR [--expected-digest D] [--require-digest]
       [--model-name N] [--model-version V] [--data-sha256 H]

The Dockerfile runs this during the build with the digest `make package` recorded (the build
argument BUNDLE_DIGEST, also an image label) and --require-digest, so an image never carries a
bundle whose files were changed after packaging, even with its manifest rewritten to match, nor
labels that name a different model than the one inside.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.bundle import MANIFEST_FILE, METADATA_FILE, check_anchor
from core.cli import entry_point, step
from core.errors import BundleIntegrityError
from core.settings import get_settings


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
    parser.add_argument("--expected-digest", default="", help="default: MODEL_DIGEST")
    parser.add_argument(
        "--require-digest", action="store_true", help="refuse when no digest is given"
    )
    parser.add_argument(
        "--digest-only",
        action="store_true",
        help="check the files and the digest only: no image labels to compare (`make verify-bundle`)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    with step(f"verify bundle {args.bundle}"):
        digest = check_anchor(
            args.bundle,
            args.expected_digest or settings.model_digest,
            required=args.require_digest or settings.anchor_required,
            source="--expected-digest" if args.expected_digest else "MODEL_DIGEST",
        )
        files = json.loads((args.bundle / MANIFEST_FILE).read_text())["files"]
        metadata = json.loads((args.bundle / METADATA_FILE).read_text())
        if not args.digest_only:
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
        f"{len(files)} files match the manifest, digest {digest}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
