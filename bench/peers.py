"""Peers in the serving benchmark that speak the Open Inference Protocol (V2).

- **ours over V2**: our service (the same command, bundle and workers as "ours") answering
  `POST /v2/models/{name}/infer`, one input tensor per feature.
- **MLServer** (PyPI `mlserver` with `mlserver-sklearn`) serving the same fitted pipeline over
  V2, with `parallel_workers` equal to our uvicorn workers and its other settings at their
  defaults (adaptive batching off, metrics on) except debug logging (off, as our access log is).
  MLServer 1.7 pins FastAPI 0.115 (ours 0.165), so it runs from its own environment,
  `build/bench-envs/mlserver`, made by `uv venv` and `uv pip install` from PyPI with our
  scikit-learn version, and reused while its requirements stay the same. mlserver-sklearn loads
  a model with `joblib.load`, so it gets the pipeline as a joblib file (a bench-only copy; our
  service never loads one).

Both get the same body apart from what each protocol server needs (MLServer: `content_type`
parameters for its pandas codec, and `predict_proba` as the requested output); before the load,
each answer is checked against in-process `predict_proba` on that row, so all serve one model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import joblib
import orjson
import sklearn

from core.config import Config, FeatureType, load_config
from core.net import free_port
from serving.v2 import advertised

ROOT = Path(__file__).resolve().parents[1]
# uvloop 0.22 raises in the asyncio.get_event_loop() MLServer 1.7.1's inference workers call at
# start ("There is no current event loop"): every worker dies and the model never loads.
MLSERVER = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22")
ENV_DIR = ROOT / "build" / "bench-envs" / "mlserver"
V2_PEERS = {"ours-v2": "ours over V2", "mlserver": "MLServer 1.7.1 (V2)"}
# One server of the benchmark: name, command, environment, ready path, load path, wrk Lua script.
Server = tuple[str, list[str], dict[str, str], str, str, Path]


def _uv() -> str | None:
    """The uv binary: $UV, then PATH, then the one `make install` bootstraps."""
    found = os.environ.get("UV") or shutil.which("uv")
    local = ROOT / ".tools" / "bin" / "uv"
    return found or (str(local) if local.is_file() else None)


def mlserver_env() -> Path:
    """Make (once) MLServer's own environment; return its bin folder. Raises RuntimeError."""
    requirements = "\n".join([*MLSERVER, f"scikit-learn=={sklearn.__version__}"])
    stamp = ENV_DIR / "requirements.txt"
    binary = ENV_DIR / "bin"
    if stamp.is_file() and stamp.read_text() == requirements and (binary / "mlserver").is_file():
        return binary
    uv = _uv()
    if uv is None:
        raise RuntimeError("uv not found (set UV, or run make install, which bootstraps it)")
    print(f"making MLServer's environment {ENV_DIR} (uv, from PyPI) …", flush=True)
    shutil.rmtree(ENV_DIR, ignore_errors=True)
    for cmd in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(ENV_DIR)],
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(binary / "python"),
            *requirements.split(),
        ],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])} failed: {done.stderr.strip()[-500:]}")
    stamp.write_text(requirements)
    return binary


def _tensors(config: Config, record: dict[str, Any], mlserver: bool) -> list[dict[str, Any]]:
    """One V2 input tensor per feature holding the record's value, of the advertised datatype."""
    out = []
    for feature in config.contract.features:
        kind = advertised(feature)
        if mlserver and feature.type is FeatureType.boolean:
            kind = "INT64"  # the pipeline's imputer refuses a bool column; it was fitted on 0/1
        value = record[feature.name]
        if value is not None and kind == "INT64":
            value = int(value)
        tensor: dict[str, Any] = {"name": feature.name, "datatype": kind, "shape": [1]}
        if mlserver and kind == "BYTES":
            tensor["parameters"] = {"content_type": "str"}  # else its codec leaves bytes
        out.append({**tensor, "data": [value]})
    return out


def bodies(prep: dict[str, Any]) -> dict[str, bytes]:
    """The request each V2 peer gets: the benchmark's first record as one tensor per feature."""
    config = load_config(prep["config"])
    record = prep["records"][0]
    mlserver = {
        "parameters": {"content_type": "pd"},
        "inputs": _tensors(config, record, mlserver=True),
        "outputs": [{"name": "predict_proba"}],
    }
    return {
        "ours-v2": orjson.dumps({"inputs": _tensors(config, record, mlserver=False)}),
        "mlserver": orjson.dumps(mlserver),
    }


def _mlserver(prep: dict[str, Any], tmp: Path, name: str, workers: int, lua: Path) -> Server:
    """MLServer on the same pipeline, started like the others (its HTTP port from {port})."""
    binary = mlserver_env()
    folder = tmp / "mlserver"
    folder.mkdir()
    joblib.dump(prep["pipeline"], folder / "model.joblib")
    settings = {
        "debug": False,
        "parallel_workers": workers,
        "host": "127.0.0.1",
        # Its gRPC and metrics servers listen too: on free ports of their own.
        "grpc_port": free_port(),
        "metrics_port": free_port(),
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model = {
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "bench"},
    }
    (folder / "model-settings.json").write_text(json.dumps(model))
    command = f"MLSERVER_HTTP_PORT={{port}} exec {binary / 'mlserver'} start {folder}"
    return (
        "mlserver",
        ["/bin/sh", "-c", command],
        {"PATH": f"{binary}{os.pathsep}{os.environ.get('PATH', '')}"},
        f"/v2/models/{name}/ready",
        f"/v2/models/{name}/infer",
        lua,
    )


def v2_servers(
    ours: Server, prep: dict[str, Any], tmp: Path, workers: int, lua: Callable[[bytes, Path], Path]
) -> list[Server]:
    """Ours over V2 (the `ours` server's command, another route) and MLServer, when it installs.

    `lua(body, path)` writes the wrk script that POSTs a body.
    """
    name = load_config(prep["config"]).mlflow.registered_model
    scripts = {peer: lua(body, tmp / f"{peer}.lua") for peer, body in bodies(prep).items()}
    _, cmd, env, ready, _, _ = ours
    servers = [("ours-v2", cmd, env, ready, f"/v2/models/{name}/infer", scripts["ours-v2"])]
    try:
        servers.append(_mlserver(prep, tmp, name, workers, scripts["mlserver"]))
    except RuntimeError as exc:
        print(f"MLServer not measured: {exc}", flush=True)
    return servers


def check_answer(name: str, url: str, path: str, prep: dict[str, Any], res: dict[Any, Any]) -> None:
    """Note the load average; for a V2 peer, check its answer equals predict_proba on the row."""
    res["load"] = os.getloadavg()
    if name not in V2_PEERS:
        return
    answer = httpx.post(
        url + path, content=bodies(prep)[name], headers={"Content-Type": "application/json"}
    )
    answer.raise_for_status()
    tensors = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    # MLServer answers predict_proba's [1, 2] matrix; ours the positive class's probability.
    got = tensors["predict_proba"][1] if name == "mlserver" else tensors["probability"][0]
    expected = float(prep["pipeline"].predict_proba(prep["rows"].iloc[:1])[0, 1])
    if abs(got - expected) > 1e-6:
        raise SystemExit(
            f"{name} answers {got}, in-process predict_proba {expected}: not one model"
        )


def named(results: dict[str, dict[Any, Any]]) -> list[tuple[str, dict[Any, Any]]]:
    """The V2 peers that ran, as (row label, results) for the report's table."""
    return [(label, results[key]) for key, label in V2_PEERS.items() if key in results]


def checks(results: dict[str, dict[Any, Any]]) -> list[dict[str, object]]:
    """Ratios of ours over V2 to MLServer (the issue asks ours to be ahead), and the loads."""
    ours, peer = results.get("ours-v2"), results.get("mlserver")
    rows: list[dict[str, object]] = []
    if ours is not None and peer is not None:
        rps = ours[64].rps / max(peer[64].rps, 1e-9)
        p99 = ours[64].p99_ms / peer[64].p99_ms
        rows += [
            {
                "measure": "req/s at c=64, ours over V2 / MLServer",
                "value": f"{rps:.1f}x",
                "target": "> 1x",
                "met": "yes" if rps > 1 else "NO",
            },
            {
                "measure": "p99 at c=64, ours over V2 / MLServer",
                "value": f"{p99:.2f}x",
                "target": "< 1x",
                "met": "yes" if p99 < 1 else "NO",
            },
        ]
    else:
        rows.append(
            {"measure": "ours over V2 vs MLServer", "value": "not run", "target": "", "met": ""}
        )
    loads = ", ".join(f"{k} {v['load'][0]:.2f}" for k, v in results.items() if "load" in v)
    rows.append(
        {
            "measure": "load average (1 min) as each server started",
            "value": loads,
            "target": "(report)",
            "met": "",
        }
    )
    return rows
