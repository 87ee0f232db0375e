"""Stand-in docker/build-push-action: a real image build with buildah, into local storage.

No Docker engine and no image registry here, so the build runs `buildah bud` on the context with
the step's file, build arguments, labels and tags (the base images the Dockerfile names are the
local stand-ins `deploy.stand_ins` makes, as `make image` does). Local container storage is the
"registry": `push: true` records `repository@digest tag` in STANDIN_STATE/registry/pushed.txt,
where the digest is the built image's own manifest digest. SBOM and provenance are recorded, not
generated.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

# The template under test (the job's checkout): its container settings and base-image stand-ins.
sys.path.insert(0, os.environ["GITHUB_WORKSPACE"])
from deploy.containers import container_env  # noqa: E402
from deploy.stand_ins import local_base_args  # noqa: E402


def lines(value: str, split_commas: bool = True) -> list[str]:
    text = value.replace(",", "\n") if split_commas else value
    return [x.strip() for x in text.splitlines() if x.strip()]


def inspect(image: str, env: dict[str, str], field: str) -> str:
    done = subprocess.run(
        ["podman", "image", "inspect", "--format", f"{{{{{field}}}}}", image],
        env=env, capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


def main() -> None:
    env = os.environ
    context = Path(env.get("CONTEXT") or ".").resolve()
    dockerfile = Path(env.get("FILE") or context / "Dockerfile").resolve()
    if not dockerfile.is_file():
        raise SystemExit(f"stand-in build-push: no Dockerfile at {dockerfile}")
    tags = lines(env.get("TAGS", ""))
    if not tags:
        raise SystemExit("stand-in build-push: give tags (the image is found by them here)")
    build_args = lines(env.get("BUILD_ARGS", ""), split_commas=False)
    labels = lines(env.get("LABELS", ""), split_commas=False)
    tools = container_env(context)
    # The pinned base (by digest) is not in local storage: a local stand-in of its tag, as make image.
    build_args += [f"{k}={v}" for k, v in local_base_args(dockerfile, context, tools).items()]
    argv = ["buildah", "bud", "--pull=never", "--layers", "--format", "docker", "-f", str(dockerfile)]
    argv += [f"--tag={tag}" for tag in tags]
    argv += [f"--build-arg={arg}" for arg in build_args]
    argv += [f"--label={label}" for label in labels]
    done = subprocess.run([*argv, str(context)], env=tools, check=False)
    if done.returncode != 0:
        raise SystemExit(f"stand-in build-push: buildah exited {done.returncode}")
    digest = inspect(tags[0], tools, ".Digest")
    image_id = "sha256:" + inspect(tags[0], tools, ".Id")
    registry = Path(env["STANDIN_STATE"]) / "registry"
    folder = registry / "images" / digest.replace(":", "-")
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "digest": digest,
        "imageid": image_id,
        "tags": tags,
        "build_args": build_args,
        "labels": labels,
        "sbom": env.get("SBOM", ""),
        "provenance": env.get("PROVENANCE", ""),
        "pushed": env.get("PUSH") == "true",
        "loaded": env.get("LOAD") == "true",
    }
    (folder / f"build-{len(list(folder.glob('build-*.json')))}.json").write_text(json.dumps(record))
    if record["pushed"]:
        with (registry / "pushed.txt").open("a") as f:
            for tag in tags:
                f.write(f"{tag.rsplit(':', 1)[0]}@{digest} {tag}\n")
    with Path(env["GITHUB_OUTPUT"]).open("a") as f:
        f.write(f"digest={digest}\nimageid={image_id}\n")
        f.write(f"metadata={json.dumps({'containerimage.digest': digest, 'image.name': ','.join(tags)})}\n")
    print(f"stand-in build-push: {digest} pushed={record['pushed']} tags={tags}")


main()
