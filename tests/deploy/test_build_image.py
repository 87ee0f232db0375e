"""`make image`'s pieces that need no container engine: build arguments, command lines, bases."""

from __future__ import annotations

import json
import re
import resource
from pathlib import Path

import pytest

from core.errors import DeployError
from deploy import stand_ins
from deploy.build_image import build_args, build_command, context_bundle, context_config
from deploy.containers import HARDENED, containers_conf, run_argv
from deploy.stand_ins import base_images, image_args, registry_host

ROOT = Path(__file__).resolve().parents[2]


def test_build_args_come_from_the_bundle_metadata_and_the_revision(tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_text(
        json.dumps({"model_name": "m", "model_version": 3, "data_sha256": "ab" * 32})
    )
    assert build_args(tmp_path, "c0ffee") == {
        "MODEL_NAME": "m",
        "MODEL_VERSION": "3",
        "DATA_SHA256": "ab" * 32,
        "REVISION": "c0ffee",
        "MODEL_RUNTIME": "sklearn",  # no compiled.json: the model did not compile
    }
    (tmp_path / "compiled.json").write_text("{}")
    assert build_args(tmp_path, "c0ffee")["MODEL_RUNTIME"] == "numpy"


def test_a_missing_bundle_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="make package"):
        build_args(tmp_path / "nothing", "x")


def test_buildah_builds_offline_with_layers_in_the_docker_format() -> None:
    argv = build_command("buildah", ROOT / "Dockerfile", "t:1", {"A": "1"}, ROOT)
    assert argv[:2] == ["buildah", "bud"]
    assert {"--pull=never", "--layers", "--build-arg=A=1"} <= set(argv)
    assert argv[argv.index("--format") + 1] == "docker", "the OCI format drops HEALTHCHECK"
    assert build_command("docker", ROOT / "Dockerfile", "t:1", {}, ROOT, no_cache=True)[:2] == [
        "docker",
        "build",
    ]


def test_a_bundle_outside_the_context_is_staged_inside_it(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bundle.json").write_text("{}")
    assert context_bundle(tmp_path / "b", root) == "build/image-bundle"
    assert (root / "build" / "image-bundle" / "bundle.json").is_file()
    (root / "build" / "bundle").mkdir()
    assert context_bundle(root / "build" / "bundle", root) == "build/bundle"
    with pytest.raises(DeployError, match="outside"):
        context_config(tmp_path / "config.yaml", root)
    (root / "config.yaml").write_text("project: x\n")
    (root / "tests" / "fixtures").mkdir(parents=True)
    (root / "tests" / "fixtures" / "config.yaml").write_text("project: fixture\n")
    assert context_config(root / "config.yaml", root) == "config.yaml"
    assert context_config(root / "tests" / "fixtures" / "config.yaml", root) == (
        "build/image-config/config.yaml"
    )
    assert (root / "build" / "image-config" / "config.yaml").read_text() == "project: fixture\n"


def test_the_dockerfiles_bases_are_found_with_their_registries() -> None:
    # One external image, pinned by digest: uv comes from PyPI, hash-pinned, in the dependency step.
    images = base_images(ROOT / "Dockerfile")
    assert len(images) == 1, images
    assert not re.search(r"--from=[\w.-]+[/:]", (ROOT / "Dockerfile").read_text()), (
        "no image copied from"
    )
    python = images[0]
    assert re.fullmatch(r"python:[\w.-]+@sha256:[0-9a-f]{64}", python)  # pinned by digest
    assert image_args(ROOT / "Dockerfile")["PYTHON_IMAGE"] == python
    assert registry_host("python:3.11") == "registry-1.docker.io"
    assert registry_host("ghcr.io/astral-sh/uv:0.13.9") == "ghcr.io"


def test_a_stand_in_of_an_older_recipe_is_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Labels of three local images: a pulled one, a stand-in of the first recipe (no pip, no
    # recipe label), one of the current recipe.
    labels = {
        "pulled": {},
        "old": {"io.github.mlops-template.stand-in": "true"},
        "new": {
            "io.github.mlops-template.stand-in": "true",
            stand_ins.RECIPE_KEY: stand_ins.STAND_IN_RECIPE,
        },
    }
    monkeypatch.setattr(stand_ins, "_label", lambda image, key, env: labels[image].get(key, ""))
    assert [stand_ins.is_current(image, {}) for image in labels] == [True, False, True]


def test_containers_conf_uses_runc_and_stays_within_the_hard_limits(tmp_path: Path) -> None:
    text = containers_conf(tmp_path).read_text()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert 'runtime = "runc"' in text
    if hard != resource.RLIM_INFINITY:
        assert f"nofile={hard}:{hard}" in text


def test_containers_run_as_the_manifests_run_them() -> None:
    argv = run_argv("img:1", name="n", port=1234, env={"A": "1"})
    assert argv[:2] == ["podman", "run"] and argv[-1] == "img:1"
    assert set(HARDENED) <= set(argv)
    assert "--publish=127.0.0.1:1234:8000" in argv and "--env=A=1" in argv
