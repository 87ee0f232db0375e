"""The Dockerfile: what its final stage promises, and its exact command run here without Docker.

There is no container engine on these machines. The slow test below parses the final stage's
ENV / WORKDIR / CMD and runs that exact command from the repository root (WORKDIR mapped to the
root, /tmp to a scratch folder) against a real bundle, then smoke-tests it. It proves the command,
the environment and the module path work with this code; it does NOT prove the image builds,
that the lock installs in it, or that it runs as UID 10001 on a read-only filesystem: GitHub's
runners build and run the image for real (issue 10).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from core.config import Config
from core.errors import DeployError
from core.frames import request_records
from deploy.image import ImageSpec, _instructions, local_process, parse_dockerfile
from deploy.stage import image_service

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMMAND = ["python", "-m", "serving.serve"]


@pytest.fixture(scope="module")
def spec() -> ImageSpec:
    return parse_dockerfile(DOCKERFILE, base_env={"PATH": "/usr/local/bin:/usr/bin:/bin"})


def test_final_stage_runs_the_serve_module_in_exec_form(spec: ImageSpec) -> None:
    assert spec.argv == COMMAND
    assert spec.env["UVICORN_HOST"] == "0.0.0.0"
    assert spec.env["UVICORN_PORT"].isdigit()
    assert int(spec.env["WEB_CONCURRENCY"]) >= 1
    assert spec.env["MODEL_BUNDLE"].startswith(spec.workdir)
    assert spec.env["PATH"].startswith(f"{spec.workdir}/.venv/bin:")
    assert spec.workdir == "/app"


def test_final_stage_is_non_root_with_healthcheck_and_labels(spec: ImageSpec) -> None:
    uid = spec.user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root UID"
    assert spec.healthcheck == ["python", "-m", "deploy.healthcheck"]
    for key in (
        "org.opencontainers.image.source",
        "org.opencontainers.image.revision",
        "io.github.mlops-template.model.name",
        "io.github.mlops-template.model.version",
        "io.github.mlops-template.data.sha256",
    ):
        assert key in spec.labels


def test_build_installs_from_the_lock_only_and_verifies_the_bundle() -> None:
    text = DOCKERFILE.read_text()
    assert "uv sync --frozen --no-dev" in text
    # pip installs uv alone, every file hash-pinned, and the same RUN syncs the lock and removes
    # uv again: no build tool in any layer, and no mount from another stage (buildah 1.28 could
    # not mount from a stage it took from its cache).
    pips = [args for keyword, args in _instructions(text) if "pip install" in args]
    assert len(pips) == 1 and "--require-hashes" in pips[0], pips
    assert "-r requirements.txt" in pips[0] and "--no-deps" in pips[0]
    assert "uv sync" in pips[0] and "rm -rf /tmp/uv requirements.txt" in pips[0], pips
    assert "COPY uv.lock pyproject.toml .ci/uv/requirements.txt /app/" in text
    assert "from=" not in pips[0]
    requirement = (ROOT / ".ci" / "uv" / "requirements.txt").read_text()
    assert re.search(r"^uv==[\d.]+ \\$", requirement, re.M)
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", requirement)) >= 2
    # The bundle is checked where it is served from, in the final stage, after the code it runs
    # with: a code-only change never re-copies the venv (it is built in that stage, not copied).
    final = text[text.rindex("\nFROM ") :]
    assert "COPY --from" not in final
    verify = final.index("python -m deploy.verify_bundle bundle")
    for copied in ("COPY ${BUNDLE_DIR}/ bundle/", "COPY core/", "COPY serving/", "COPY deploy/"):
        assert final.index(copied) < verify, copied
    assert final.index("uv sync") < final.index("COPY core/")


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerignore_keeps_data_reports_stores_and_venv_out() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**", "start from nothing, then allow what the image needs"
    allowed = " ".join(line for line in lines if line.startswith("!"))
    for kept_out in ("data", "reports", "mlruns", ".venv", "tests", ".git"):
        assert f"!{kept_out}" not in allowed
    assert "!build/bundle/**" in allowed and "!uv.lock" in allowed


def test_parser_handles_continuations_legacy_env_and_substitution(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "ARG BASE=python:3.11\nFROM ${BASE} AS a\nENV SHOULD_NOT=leak\n"
        "FROM ${BASE}\n# comment\nWORKDIR /srv\nWORKDIR app\n"
        'ARG D=4 E="five six" F\nENV G=${D}/${E}\n'
        'ENV A=1 \\\n    B="two words" \\\n    C=${A}-$B\nENV LEGACY value with spaces\n'
        'ENTRYPOINT ["tini", "--"]\nCMD ["run", "--flag"]\n'
    )
    spec = parse_dockerfile(dockerfile)
    assert spec.env == {
        "A": "1",
        "B": "two words",
        "C": "1-two words",
        "LEGACY": "value with spaces",
        "G": "4/five six",
    }
    assert spec.workdir == "/srv/app"
    assert spec.argv == ["tini", "--", "run", "--flag"]


def test_parser_refuses_shell_form_cmd(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\nCMD uvicorn app:app\n")
    with pytest.raises(DeployError, match="exec form"):
        parse_dockerfile(dockerfile)


def test_local_process_maps_workdir_and_tmp(spec: ImageSpec, tmp_path: Path) -> None:
    argv, env = local_process(spec, ROOT, tmp_path, {"UVICORN_PORT": "1234"})
    assert argv == spec.argv
    assert env["PATH"].startswith(f"{ROOT}/.venv/bin:")
    assert env["MODEL_BUNDLE"] == f"{ROOT}/bundle"
    assert env["PREDICTION_LOG_URL"] == f"sqlite:///{tmp_path}/predictions.db"
    assert env["UVICORN_PORT"] == "1234"
    assert shutil.which(argv[0], path=env["PATH"]) == str(ROOT / ".venv" / "bin" / "python")


def dashboard_metrics() -> set[str]:
    """Metric names the Grafana dashboard queries (histogram series reduced to their family)."""
    text = (ROOT / "infra" / "grafana" / "dashboards" / "model-service.json").read_text()
    exprs = [t["expr"] for p in json.loads(text)["panels"] for t in p["targets"]]
    functions = {"sum", "rate", "max", "by", "clamp_min", "histogram_quantile", "ignoring", "le"}
    names = {n for e in exprs for n in re.findall(r"\b([a-z_][a-z0-9_]*)\b(?=[\[{)\s])", e)}
    names -= functions | {"group_left", "route", "status", "model_version"}
    return {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}


@pytest.mark.slow
@pytest.mark.e2e
def test_the_images_command_serves_the_bundle(
    trained_bundle: Path, config: Config, default_frame: pd.DataFrame, tmp_path: Path
) -> None:
    record = request_records(default_frame.head(1), config.contract)[0]
    with image_service(
        DOCKERFILE, trained_bundle, config.source, tmp_path, tmp_path / "server.log"
    ) as service:
        service.wait_ready()
        with httpx.Client(base_url=service.url, timeout=30) as client:
            assert client.get("/health").status_code == 200
            assert client.get("/ready").status_code == 200
            response = client.post("/predict", json=record)
            assert response.status_code == 200, response.text
            body = response.json()
            assert 0.0 <= body["probability"] <= 1.0
            assert str(body["model_version"]) == "0"
            metrics = client.get("/metrics").text
        # The Docker HEALTHCHECK command, run the same way against the same process.
        _, env = local_process(
            parse_dockerfile(DOCKERFILE, base_env={"PATH": "/usr/bin:/bin"}),
            ROOT,
            tmp_path,
            {"UVICORN_PORT": service.url.rsplit(":", 1)[1]},
        )
        health = parse_dockerfile(DOCKERFILE).healthcheck
        assert subprocess.run(health, cwd=ROOT, env=env, check=False).returncode == 0
        assert service.stop() == 0, service.log_tail()
    missing = {m for m in dashboard_metrics() if m not in metrics}
    assert not missing, (
        f"the Grafana dashboard queries metrics the service does not export: {missing}"
    )


def test_rebase_maps_each_container_path_once_even_when_the_root_is_under_tmp() -> None:
    from deploy.image import _rebase

    root, scratch = Path("/tmp/act/job"), Path("/tmp/scratch")
    value = _rebase("/app/.venv/bin:/tmp/cache:/usr/bin", "/app", root, scratch)
    assert value == "/tmp/act/job/.venv/bin:/tmp/scratch/cache:/usr/bin"


def test_rebase_with_the_default_workdir_maps_only_tmp() -> None:
    from deploy.image import _rebase

    value = _rebase("/usr/bin:/tmp/x", "/", Path("/work/root"), Path("/s"))
    assert value == "/usr/bin:/s/x"
