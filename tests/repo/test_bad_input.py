"""The bad-input suite: every way a careful user or an attacker was seen to break a command.

Each case runs the command's own entry point (or `python -m`, where what matters is a separate
process) and checks the exit code, that the one error line names the column, file or field, and
that no traceback was printed. Data comes from the frozen churn fixture; columns are picked from
its contract, never written here.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.bundle import MANIFEST_FILE, MODEL_FILE, bundle_digest
from core.cli import entry_point
from core.config import Config, FeatureType, load_config
from core.errors import BundleIntegrityError, ConfigError, DataError
from core.io import replace_files, sha256_file
from core.settings import Settings, get_settings
from tests.conftest import CHURN_CONFIG, ROOT

Result = tuple[int, str]


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def one_error_line(code: int, err: str) -> str:
    """Check a refusal printed exactly one error line and no traceback; return that line."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code != 0 and len(errors) == 1, err
    return errors[0]


def call(
    main: Callable[[list[str]], int], args: list[str], capsys: pytest.CaptureFixture[str]
) -> Result:
    code = main(args)
    return code, one_error_line(code, capsys.readouterr().err)


# --- trust: a bundle with a code-running pickle and a recomputed manifest ----------------------------


class _Payload:
    """Unpickling this creates a file: proof that the code in a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.fixture
def tampered(trained_bundle: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """(the tampered bundle, the file its payload would create, the original's digest)."""
    bundle = Path(shutil.copytree(trained_bundle, tmp_path / "tampered"))
    marker = tmp_path / "payload-ran"
    (bundle / MODEL_FILE).write_bytes(pickle.dumps(_Payload(marker)))
    files = {p.name: sha256_file(p) for p in sorted(bundle.iterdir()) if p.name != MANIFEST_FILE}
    (bundle / MANIFEST_FILE).write_text(
        json.dumps({"algorithm": "sha256", "files": files}, indent=2) + "\n"
    )
    return bundle, marker, bundle_digest(trained_bundle)


def _refused(line: str, bundle: Path, digest: str) -> None:
    assert str(bundle) in line and "does not match" in line and digest in line, line


def test_the_payload_does_not_run_even_when_loaded_without_the_anchor(
    tampered: tuple[Path, Path, str],
) -> None:
    """The second wall: the manifest passes, but the model file is read by skops, never unpickled."""
    from core.bundle import load_bundle

    bundle, marker, _ = tampered
    with pytest.raises(BundleIntegrityError, match="not a model skops can read"):
        load_bundle(bundle)
    assert not marker.exists()


def test_make_score_refuses_the_tampered_bundle(
    tampered: tuple[Path, Path, str],
    tmp_path: Path,
    config: Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scoring import score

    bundle, marker, digest = tampered
    out = tmp_path / "scores.parquet"
    monkeypatch.setenv("MODEL_DIGEST", digest)
    args = ["--config", str(CHURN_CONFIG), "--input", str(config.data_path), "--output", str(out)]
    code, line = call(score.main, [*args, "--bundle", str(bundle)], capsys)
    assert code == BundleIntegrityError.exit_code
    _refused(line, bundle, digest)
    assert not marker.exists() and not out.exists()


@pytest.mark.slow
def test_python_m_scoring_score_refuses_the_tampered_bundle(
    tampered: tuple[Path, Path, str], tmp_path: Path, config: Config
) -> None:
    """The same through the real command line, in its own process."""
    bundle, marker, digest = tampered
    out = tmp_path / "scores.parquet"
    argv = ["--config", str(CHURN_CONFIG), "--input", str(config.data_path), "--output", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "scoring.score", *argv, "--bundle", str(bundle)],
        cwd=ROOT,
        env={**os.environ, "MODEL_DIGEST": digest},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == BundleIntegrityError.exit_code
    _refused(one_error_line(proc.returncode, proc.stderr), bundle, digest)
    assert not marker.exists() and not out.exists()


def test_drift_refuses_the_tampered_bundle(
    tampered: tuple[Path, Path, str],
    tmp_path: Path,
    config: Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestration.drift import main

    bundle, marker, digest = tampered
    monkeypatch.setenv("MODEL_DIGEST", digest)
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    args = [
        "--config",
        str(CHURN_CONFIG),
        "--bundle",
        str(bundle),
        "--current",
        str(config.data_path),
    ]
    code, line = call(main, args, capsys)
    assert code == BundleIntegrityError.exit_code
    _refused(line, bundle, digest)
    assert not marker.exists()


def test_serve_refuses_the_tampered_bundle(
    tampered: tuple[Path, Path, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serving import serve

    bundle, marker, digest = tampered
    monkeypatch.setenv("MODEL_BUNDLE", str(bundle))
    monkeypatch.setenv("MODEL_DIGEST", digest)
    monkeypatch.setattr(serve.os, "execv", _no_exec)
    code, line = call(serve.main, ["--config", str(CHURN_CONFIG)], capsys)
    assert code == BundleIntegrityError.exit_code
    _refused(line, bundle, digest)
    assert not marker.exists()


def _no_exec(*_: Any) -> None:
    raise AssertionError("the command went on past its checks (uvicorn, an image build)")


def test_the_image_build_refuses_the_tampered_bundle(
    tampered: tuple[Path, Path, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both checks: `make image` before building, and the Dockerfile's own verification step."""
    from deploy import build_image, verify_bundle

    bundle, marker, digest = tampered
    code, line = call(
        verify_bundle.main, [str(bundle), "--require-digest", "--expected-digest", digest], capsys
    )
    assert code == BundleIntegrityError.exit_code
    _refused(line, bundle, digest)
    monkeypatch.setenv("MODEL_DIGEST", digest)
    get_settings.cache_clear()
    monkeypatch.setattr(build_image, "pick_engine", _no_exec)  # never reach a real build
    code, line = call(build_image.main, ["--bundle", str(bundle), "--tag", "refused:test"], capsys)
    assert code == BundleIntegrityError.exit_code
    _refused(line, bundle, digest)
    assert not marker.exists()


def test_the_image_build_refuses_a_bundle_without_a_digest(
    trained_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deploy import verify_bundle

    code, line = call(verify_bundle.main, [str(trained_bundle), "--require-digest"], capsys)
    assert code == BundleIntegrityError.exit_code and "MODEL_DIGEST" in line
    # The original bundle with its own recorded digest passes.
    digest = bundle_digest(trained_bundle)
    meta = json.loads((trained_bundle / "bundle.json").read_text())
    labels = ["--model-name", meta["model_name"], "--model-version", meta["model_version"]]
    assert verify_bundle.main([str(trained_bundle), "--expected-digest", digest, *labels]) == 0


def test_in_ci_no_anchor_refuses_and_locally_it_warns(
    trained_bundle: Path,
    tmp_path: Path,
    config: Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scoring import score

    out = tmp_path / "scores.parquet"
    args = ["--config", str(CHURN_CONFIG), "--input", str(config.data_path), "--output", str(out)]
    monkeypatch.setenv("CI", "true")
    code, line = call(score.main, [*args, "--bundle", str(trained_bundle)], capsys)
    assert code == BundleIntegrityError.exit_code and "MODEL_DIGEST" in line
    assert not out.exists()
    monkeypatch.delenv("CI")
    get_settings.cache_clear()
    assert score.main([*args, "--bundle", str(trained_bundle)]) == 0
    assert "warning: MODEL_DIGEST is not set" in capsys.readouterr().err


def test_a_malformed_digest_is_named(
    trained_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deploy import verify_bundle

    code, line = call(verify_bundle.main, [str(trained_bundle), "--expected-digest", "abc"], capsys)
    assert code == BundleIntegrityError.exit_code and "'abc' is not a bundle digest" in line


# --- fail closed: API key and content type ------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_api_key_refuses_to_serve(
    key: str,
    trained_bundle: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serving import serve

    monkeypatch.setenv("MODEL_BUNDLE", str(trained_bundle))
    monkeypatch.setenv("MODEL_DIGEST", bundle_digest(trained_bundle))
    monkeypatch.setenv("API_KEY", key)
    monkeypatch.setattr(serve.os, "execv", _no_exec)
    code, line = call(serve.main, ["--config", str(CHURN_CONFIG)], capsys)
    assert (
        code == ConfigError.exit_code and "API_KEY is set but empty" in line and "AUTH=off" in line
    )


def test_auth_off_must_be_explicit_off_loopback_and_start_up_says_so(
    trained_bundle: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving import serve

    assert Settings(UVICORN_HOST="0.0.0.0", AUTH="on", API_KEY="k").auth_key() == "k"
    with pytest.raises(ConfigError, match=r"no API_KEY to serve on 0\.0\.0\.0"):
        Settings(UVICORN_HOST="0.0.0.0").auth_key()
    assert Settings(UVICORN_HOST="0.0.0.0", AUTH="off").auth_key() is None
    with pytest.raises(ConfigError, match="AUTH='maybe'"):
        Settings(AUTH="maybe").auth_key()
    monkeypatch.setenv("MODEL_BUNDLE", str(trained_bundle))
    monkeypatch.setenv("MODEL_DIGEST", bundle_digest(trained_bundle))
    monkeypatch.setenv("AUTH", "off")
    started: list[Any] = []
    monkeypatch.setattr(serve.os, "execv", lambda *a: started.append(a))
    assert serve.main(["--config", str(CHURN_CONFIG)]) == 0
    assert started and "authentication: OFF" in capsys.readouterr().out


@pytest.fixture
def client(trained_bundle: Path, tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from serving.app import create_app

    settings = Settings(
        CONFIG_PATH=CHURN_CONFIG,
        MODEL_BUNDLE=trained_bundle,
        PREDICTION_LOG_URL=f"sqlite:///{tmp_path}/log.db",
        API_KEY="secret-key",
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_a_body_that_is_not_json_is_415(
    client: Any, default_frame: pd.DataFrame, config: Config
) -> None:
    from core.frames import request_record

    body = json.dumps(request_record(default_frame.iloc[0], config.contract))
    headers = {"X-API-Key": "secret-key"}
    for kind in ("text/plain", "application/x-www-form-urlencoded", None):
        sent = {**headers, **({"content-type": kind} if kind else {})}
        answer = client.post("/predict", content=body, headers=sent)
        assert answer.status_code == 415 and "application/json" in answer.json()["detail"], kind
    assert (
        client.post(
            "/predict",
            content=body,
            headers={**headers, "content-type": "application/json; charset=utf-8"},
        ).status_code
        == 200
    )
    # Without the key: 401 first, whatever the body.
    assert (
        client.post("/predict", content=body, headers={"content-type": "text/plain"}).status_code
        == 401
    )


def test_the_openapi_schema_lists_every_error(client: Any) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict/batch", "/feedback"):
        assert {"401", "413", "415", "422"} <= set(paths[path]["post"]["responses"]), path


# --- files: one reader, the same checks ------------------------------------------------------------------


def _numeric(config: Config) -> str:
    return next(f.name for f in config.contract.of_type(FeatureType.numeric) if not f.integer)


def _label(config: Config) -> str:
    return config.contract.of_type(FeatureType.categorical)[0].name


def _train(config_path: Path) -> Callable[[list[str]], int]:
    """`make train`'s data step with its entry point's error handling (no MLflow needed)."""
    from training.data import load_dataset

    @entry_point
    def main(_: list[str]) -> int:
        load_dataset(load_config(config_path))
        return 0

    return main


@pytest.fixture
def table(tmp_path: Path, write_config: Callable[..., Path]) -> Callable[[bytes], Path]:
    """Write `data` as the config's data file; return the config's path."""

    def make(data: bytes) -> Path:
        path = tmp_path / "data.csv"
        path.write_bytes(data)

        def edit(raw: dict[str, Any]) -> None:
            raw["data"]["path"] = str(path)
            raw["data"].pop("snapshot", None)

        return write_config(edit)

    return make


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_train_on_a_header_only_file(
    table: Callable[[bytes], Path], default_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = table(_csv(default_frame.iloc[:0]))
    code, line = call(_train(cfg), [], capsys)
    assert code == DataError.exit_code and "data.csv: only a header, no data rows" in line


def test_train_names_a_category_with_a_trailing_space_and_its_file_row(
    table: Callable[[bytes], Path],
    default_frame: pd.DataFrame,
    config: Config,
    capsys: pytest.CaptureFixture[str],
) -> None:
    frame = default_frame.copy()
    label = _label(config)
    frame[label] = frame[label].astype(object)
    frame.loc[6, label] = f"{frame.loc[6, label]} "
    code, line = call(_train(table(_csv(frame))), [], capsys)
    assert code == DataError.exit_code
    assert f"data.csv, file row 8: {label}: not allowed '{frame.loc[6, label]}'" in line


def test_train_names_a_thousands_separator_with_column_and_file_row(
    table: Callable[[bytes], Path],
    default_frame: pd.DataFrame,
    config: Config,
    capsys: pytest.CaptureFixture[str],
) -> None:
    frame = default_frame.copy()
    name = _numeric(config)
    frame[name] = frame[name].astype(object)
    frame.loc[2, name] = "5,731.40"
    code, line = call(_train(table(_csv(frame))), [], capsys)
    assert code == DataError.exit_code
    assert f"column {name!r}, file row 4: '5,731.40' has a thousands separator" in line


def test_train_names_a_duplicated_column(
    table: Callable[[bytes], Path],
    default_frame: pd.DataFrame,
    config: Config,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = _label(config)
    text = _csv(default_frame).decode().splitlines()
    header = text[0].split(",")
    text[0] = ",".join(name if i == 1 else c for i, c in enumerate(header))
    code, line = call(_train(table(("\n".join(text) + "\n").encode())), [], capsys)
    assert code == DataError.exit_code and f"duplicated column name(s) {name!r}" in line


def test_a_byte_order_mark_is_read_by_train_and_score(
    table: Callable[[bytes], Path],
    default_frame: pd.DataFrame,
    trained_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scoring import score

    data = b"\xef\xbb\xbf" + _csv(default_frame)
    cfg = table(data)
    assert _train(cfg)([]) == 0
    out = tmp_path / "scores.parquet"
    args = ["--config", str(cfg), "--input", str(tmp_path / "data.csv"), "--output", str(out)]
    anchor = ["--bundle", str(trained_bundle), "--expected-digest", bundle_digest(trained_bundle)]
    assert score.main([*args, *anchor]) == 0, capsys.readouterr().err
    assert len(pd.read_parquet(out)) == len(default_frame)


def test_a_bad_utf8_byte_is_reported_at_its_offset_in_the_file(
    table: Callable[[bytes], Path],
    default_frame: pd.DataFrame,
    config: Config,
    trained_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scoring import score

    data = _csv(pd.concat([default_frame] * 2, ignore_index=True))
    at = len(data) - 2000
    at = data.index(b",", at) + 1  # the start of a field, well past the first chunk
    data = data[:at] + b"\xe9" + data[at:]
    line_no = data[:at].count(b"\n") + 1
    cfg = table(data)
    code, line = call(_train(cfg), [], capsys)
    want = f"byte 0xe9 at offset {at:,} of the file, line {line_no:,}"
    assert code == DataError.exit_code and want in line, line
    out = tmp_path / "scores.parquet"
    args = ["--config", str(cfg), "--input", str(tmp_path / "data.csv"), "--output", str(out)]
    anchor = ["--bundle", str(trained_bundle), "--expected-digest", bundle_digest(trained_bundle)]
    code, line = call(score.main, [*args, *anchor], capsys)
    assert code == DataError.exit_code and want in line, line


# --- scoring: names the problem, both files or neither ------------------------------------------------


@pytest.fixture
def score_args(trained_bundle: Path) -> list[str]:
    return [
        "--config", str(CHURN_CONFIG),
        "--bundle", str(trained_bundle),
        "--expected-digest", bundle_digest(trained_bundle),
    ]  # fmt: skip


def test_score_names_a_duplicated_column(
    score_args: list[str],
    default_frame: pd.DataFrame,
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scoring import score

    name = _label(config)
    lines = _csv(default_frame).decode().splitlines()
    lines[0] = lines[0] + "," + name
    lines[1:] = [line + ",x" for line in lines[1:]]
    source = tmp_path / "dup.csv"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.parquet"
    code, line = call(
        score.main, [*score_args, "--input", str(source), "--output", str(out)], capsys
    )
    assert code == DataError.exit_code and str(source) in line and repr(name) in line


def test_score_hints_at_the_delimiter_it_found(
    score_args: list[str],
    default_frame: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scoring import score

    source = tmp_path / "semicolons.csv"
    default_frame.to_csv(source, sep=";", index=False)
    out = tmp_path / "scores.parquet"
    code, line = call(
        score.main, [*score_args, "--input", str(source), "--output", str(out)], capsys
    )
    assert code == DataError.exit_code and "semicolon-separated" in line and str(source) in line


def test_score_names_a_thousands_separator_with_its_file_row(
    score_args: list[str],
    default_frame: pd.DataFrame,
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scoring import score

    frame = default_frame.copy()
    name = _numeric(config)
    frame[name] = frame[name].astype(object)
    frame.loc[4000, name] = "1,234.50"
    source = tmp_path / "thousands.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "scores.parquet"
    args = [*score_args, "--input", str(source), "--output", str(out), "--chunk-rows", "1000"]
    code, line = call(score.main, args, capsys)
    assert code == DataError.exit_code
    assert f"column {name!r}, file row 4,002: '1,234.50' has a thousands separator" in line


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_score_names_an_output_it_cannot_write(
    where: str,
    score_args: list[str],
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scoring import score

    if where == "a folder":
        out = tmp_path / "out"
        out.mkdir()
        words = "is a folder"
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "scores.parquet"
        words = "cannot write"
    args = [*score_args, "--input", str(config.data_path), "--output", str(out)]
    code, line = call(score.main, args, capsys)
    assert code == DataError.exit_code and str(out) in line and words in line


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(
    score_args: list[str], config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scoring import score

    out = tmp_path / "scores.parquet"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    leftover = tmp_path / f".scores.parquet.tmp-{dead.stdout.strip()}"
    leftover.write_bytes(b"half a file")
    assert score.main([*score_args, "--input", str(config.data_path), "--output", str(out)]) == 0
    assert not leftover.exists() and out.exists()
    assert f"removed {leftover}" in capsys.readouterr().out


def test_a_failed_run_commits_neither_file(
    score_args: list[str],
    default_frame: pd.DataFrame,
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A folder whose second file is broken: no output, no rejects, no temporary file."""
    from scoring import score

    folder = tmp_path / "in"
    folder.mkdir()
    default_frame.to_csv(folder / "a.csv", index=False)
    broken = default_frame.copy()
    name = _numeric(config)
    broken[name] = broken[name].astype(object)
    broken.loc[10, name] = "not-a-number"
    broken.to_csv(folder / "b.csv", index=False)
    out = tmp_path / "scores.parquet"
    code, line = call(
        score.main, [*score_args, "--input", str(folder), "--output", str(out)], capsys
    )
    assert code == DataError.exit_code and name in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_replacing_two_files_is_all_or_none(tmp_path: Path) -> None:
    """The second rename fails: the first target gets its old content back, the second keeps its."""
    first, second = tmp_path / "out.parquet", tmp_path / "out.rejects.parquet"
    first.write_text("old")
    second.write_text("old rejects")
    new_first = tmp_path / "n1"
    new_first.write_text("new")
    gone = tmp_path / "n2"  # its temporary file vanished: the rename fails
    with pytest.raises(FileNotFoundError):
        replace_files([(new_first, first), (gone, second)])
    assert first.read_text() == "old" and second.read_text() == "old rejects"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "out.rejects.parquet"]
    # Neither existed before: after the failure, neither exists.
    first.unlink()
    second.unlink()
    new_first.write_text("new")
    with pytest.raises(FileNotFoundError):
        replace_files([(new_first, first), (gone, second)])
    assert not first.exists() and not second.exists()


# --- drift: a failed run leaves no verdict -----------------------------------------------------------


def test_a_failed_drift_run_removes_the_old_report(
    trained_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestration.drift import main

    reports = tmp_path / "reports"
    old = reports / "drift" / "report.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"drifted": True}))
    monkeypatch.setenv("REPORTS_DIR", str(reports))
    monkeypatch.setenv("MODEL_DIGEST", bundle_digest(trained_bundle))
    missing = tmp_path / "window.csv"
    args = [
        "--config",
        str(CHURN_CONFIG),
        "--bundle",
        str(trained_bundle),
        "--current",
        str(missing),
    ]
    code, line = call(main, args, capsys)
    # It fails on the bundle (no drift reference in it): any failure leaves no old verdict.
    assert code == BundleIntegrityError.exit_code and "reference" in line
    assert not old.exists()


# --- config: an estimator without predict_proba -----------------------------------------------------


def test_an_estimator_without_predict_proba_fails_check_config(
    write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from core.check_config import main

    def svc(probability: bool | None) -> Callable[[dict[str, Any]], None]:
        def edit(raw: dict[str, Any]) -> None:
            raw["model"]["estimator"] = "sklearn.svm.SVC"
            raw["model"]["params"] = {} if probability is None else {"probability": probability}

        return edit

    code, line = call(main, ["--config", str(write_config(svc(None)))], capsys)
    assert code == ConfigError.exit_code and "sklearn.svm.SVC" in line and "predict_proba" in line
    assert main(["--config", str(write_config(svc(True), name="ok.yaml"))]) == 0


# --- train: only its own file's validation result ----------------------------------------------------


def test_train_attaches_only_the_validation_result_of_its_own_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result.json left by `make validate` on another file is not logged with this run."""
    from types import SimpleNamespace

    from orchestration.train import read_validation_result

    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    result = tmp_path / "reports" / "validation" / "result.json"
    result.parent.mkdir(parents=True)
    ds: Any = SimpleNamespace(path=Path("data/mine.csv"), sha256="a" * 64)
    settings = get_settings()
    assert read_validation_result(settings, ds) is None  # none written yet
    result.write_text(json.dumps({"meta": {"data_sha256": "b" * 64}}))
    assert read_validation_result(settings, ds) is None
    out = capsys.readouterr().out
    assert f"not attaching {result}" in out and "another file than data/mine.csv" in out
    result.write_text("not json {")
    assert read_validation_result(settings, ds) is None
    own = json.dumps({"meta": {"data_sha256": "a" * 64}})
    result.write_text(own)
    assert read_validation_result(settings, ds) == own
