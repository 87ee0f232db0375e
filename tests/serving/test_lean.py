"""The serving path of a compiled model imports no scikit-learn, pandas or joblib, and refuses an
edited compiled form or probe file at start-up (real uvicorn processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.compiled import ARRAYS_FILE, PROBES_FILE
from tests.serving.conftest import ROOT, serving_config, start_server
from tests.serving.test_predictor import reseal

# SQLAlchemy too: a worker writes its default SQLite log with sqlite3 (core/sqlite_log.py).
HEAVY = ("sklearn", "pandas", "joblib", "scipy", "skops", "pyarrow", "sqlalchemy")
# Run uvicorn (one process: it is the worker) with a thread that writes its sys.modules to a file
# every 0.1 s (uvicorn ends by re-raising SIGTERM on itself, so an exit hook would never run).
RECORD_MODULES = """
import json, os, runpy, sys, threading, time
out = sys.argv.pop(1)
def record():
    while True:
        with open(out + ".tmp", "w") as fh:
            fh.write(json.dumps(sorted(sys.modules)))
        os.replace(out + ".tmp", out)
        time.sleep(0.1)
threading.Thread(target=record, daemon=True).start()
sys.argv[0] = "uvicorn"
runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)
"""


def _mapped_libraries(pid: int) -> set[str]:
    return {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()}


@pytest.mark.slow
def test_a_started_worker_never_imports_sklearn_pandas_or_joblib(
    tmp_path: Path,
    trained_bundle: Path,
    raw_config: dict[str, Any],
    records: list[dict[str, Any]],
) -> None:
    out = tmp_path / "modules.json"
    server = start_server(
        tmp_path,
        bundle=trained_bundle,
        config=serving_config(tmp_path, raw_config),
        argv_prefix=[sys.executable, "-c", RECORD_MODULES, str(out)],
    )
    try:
        with server.client() as client:
            # Every route a request can take, so lazy imports on the way count too.
            assert client.post("/predict", json=records[0]).status_code == 200
            assert client.post("/predict/batch", json={"records": records[:5]}).status_code == 200
            columns = {k: [r[k] for r in records[:5]] for k in records[0]}
            assert client.post("/predict/batch", json={"columns": columns}).status_code == 200
            assert client.post("/predict", json={}).status_code == 422
            assert client.get("/model").json()["scoring"] == "compiled"
            for path in ("/metrics", "/ready", "/openapi.json"):
                assert client.get(path).status_code == 200
        libraries = _mapped_libraries(server.proc.pid)
        time.sleep(0.5)  # the recorder's next turn
        modules = json.loads(out.read_text())
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
    assert not [lib for lib in libraries if any(f"/{h}/" in lib for h in HEAVY)]
    assert "serving.app" in modules and "numpy" in modules and "uvicorn" in modules
    loaded = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    assert not loaded, f"the serving path imported {loaded}"


def _edit_coefficient(bundle: Path) -> None:
    with np.load(bundle / ARRAYS_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["coef"][1] *= 1.001
    np.savez(bundle / ARRAYS_FILE, allow_pickle=False, **arrays)


def _edit_probes(bundle: Path) -> None:
    probes = json.loads((bundle / PROBES_FILE).read_text())
    probes["scores"] = [s * 0.5 for s in probes["scores"]]
    (bundle / PROBES_FILE).write_text(json.dumps(probes))


@pytest.mark.slow
@pytest.mark.parametrize("edit", [_edit_coefficient, _edit_probes], ids=["compiled", "probes"])
def test_an_edited_bundle_with_a_recomputed_manifest_is_refused_at_start(
    tmp_path: Path, trained_bundle: Path, raw_config: dict[str, Any], edit: Any
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    edit(bundle)
    reseal(bundle)  # the manifest matches: only the probe check can tell
    config = serving_config(tmp_path, raw_config)
    env = {"MODEL_BUNDLE": str(bundle), "CONFIG_PATH": str(config)}
    env["PREDICTION_LOG_URL"] = f"sqlite:///{tmp_path}/p.db"
    for argv in (
        [sys.executable, "-m", "uvicorn", "--factory", "serving.app:app_from_env", "--port", "1"],
        [sys.executable, "-m", "serving.serve"],  # the image's command checks before any worker
    ):
        proc = subprocess.run(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 5, proc.stderr[-2000:]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "was changed" in errors[0], proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
