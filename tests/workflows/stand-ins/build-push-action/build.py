"""Stand-in image build: record the build context as an "image" in a local directory registry.

The digest is sha256 over a deterministic tar-like stream of the context (sorted paths and file
bytes), so it is well formed and changes with the context, but it is NOT the digest of a real
OCI image, and nothing here runs `docker build`: this proves the workflow wiring, not the build.
"""

import fnmatch
import hashlib
import json
import os
import shutil
from pathlib import Path

SKIP = {".git", ".venv", "node_modules", ".tools"}


def dockerignore(root: Path) -> list[tuple[bool, str]]:
    """The .dockerignore rules as (exclude?, pattern), in order: the last match decides."""
    path = root / ".dockerignore"
    rules = []
    for raw in path.read_text().splitlines() if path.is_file() else []:
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append((not line.startswith("!"), line.lstrip("!").rstrip("/")))
    return rules


def context_files(root: Path) -> list[Path]:
    """Files docker would send: .dockerignore applied (a simplified matcher), Dockerfile always."""
    rules = dockerignore(root)
    chosen = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP)
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            keep = True
            for exclude, pattern in rules:
                parts = rel.split("/")
                prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
                if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or (
                    pattern.startswith("**/") and any(fnmatch.fnmatch(x, pattern[3:]) for x in parts)
                ):
                    keep = not exclude
            if keep or rel in ("Dockerfile", ".dockerignore"):
                chosen.append(Path(rel))
    return chosen


def context_digest(root: Path) -> str:
    h = hashlib.sha256()
    for rel in context_files(root):
        path = root / rel
        h.update(str(rel).encode() + b"\0")
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
        for rel in context_files(context):
            (tmp / "rootfs" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / rel, tmp / "rootfs" / rel, follow_symlinks=False)
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
