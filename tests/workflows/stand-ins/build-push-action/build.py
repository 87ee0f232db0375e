"""Stand-in image build: record the build context as an "image" in a local directory registry.

The digest is sha256 over a deterministic tar-like stream of the context (sorted paths and file
bytes), so it is well formed and changes with the context, but it is NOT the digest of a real
OCI image, and nothing here runs `docker build`: this proves the workflow wiring, not the build.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

SKIP = {".git", ".venv", "node_modules", ".tools", "mlruns", "__pycache__"}


def context_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(path.read_bytes() if not path.is_symlink() else os.readlink(path).encode())
            h.update(b"\0")
    return h.hexdigest()


def lines(value: str) -> list[str]:
    return [x.strip() for x in value.replace(",", "\n").splitlines() if x.strip()]


def main() -> None:
    env = os.environ
    context = Path(env.get("CONTEXT") or ".").resolve()
    if not (context / "Dockerfile").is_file():
        raise SystemExit(f"stand-in build-push: no Dockerfile in {context}")
    digest = "sha256:" + context_digest(context)
    registry = Path(env["STANDIN_STATE"]) / "registry"
    image = registry / "images" / digest.replace(":", "-")
    if not image.exists():
        tmp = image.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(context, tmp / "rootfs", symlinks=True, ignore=shutil.ignore_patterns(*SKIP))
        tmp.rename(image)
    tags = lines(env.get("TAGS", ""))
    record = {
        "digest": digest,
        "tags": tags,
        "labels": lines(env.get("LABELS", "")),
        "sbom": env.get("SBOM", ""),
        "provenance": env.get("PROVENANCE", ""),
        "pushed": env.get("PUSH") == "true",
        "loaded": env.get("LOAD") == "true",
    }
    (image / f"build-{len(list(image.glob('build-*.json')))}.json").write_text(json.dumps(record))
    if record["pushed"]:
        with (registry / "pushed.txt").open("a") as f:
            for tag in tags:
                f.write(f"{tag.split(':')[0]}@{digest} {tag}\n")
    out = Path(env["GITHUB_OUTPUT"])
    with out.open("a") as f:
        f.write(f"digest={digest}\nimageid={digest}\n")
        f.write(f"metadata={json.dumps({'containerimage.digest': digest, 'image.name': ','.join(tags)})}\n")
    print(f"stand-in build-push: {digest} pushed={record['pushed']} tags={tags}")


main()
