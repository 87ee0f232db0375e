"""Serving speed: our service vs `mlflow models serve` on the same fitted pipeline, and a ceiling.

Three servers run one after the other on 127.0.0.1, each under the same uvicorn settings (workers,
no access log): ours (`python -m serving.serve`, the image's command: uvicorn on the app factory,
the workers sharing their metrics), `mlflow models serve
--env-manager local` on the same pipeline logged to a temporary MLflow store, and a FastAPI
endpoint that returns a constant (the ceiling: what the HTTP stack alone costs). Load comes from
Debian's `wrk` (apt-get install wrk; this bench installs nothing) with a Lua script that POSTs one
record, at concurrency 8 and 64 for a fixed duration. Also: /predict/batch with 10,000 records vs
in-process `predict_proba` on the same rows, resident memory and time to ready. bench/peers.py
adds the Open Inference Protocol (V2): ours over V2, and MLServer on the same pipeline.

Figures are ratios from one run; other work on the same cores makes absolute numbers noisy.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from bench import peers
from bench.bundles import bench_metadata, fit_bundle
from core.net import free_port

ROOT = Path(__file__).resolve().parents[1]
DURATION_S = int(os.environ.get("BENCH_SERVING_SECONDS", "5"))
WORKERS = int(os.environ.get("BENCH_SERVING_WORKERS", "2"))
CONCURRENCY = (8, 64)
BATCH_ROWS = 10_000
# Another estimator by import path (e.g. sklearn.ensemble.HistGradientBoostingClassifier, the model
# behind the baselines in FACTS.md); default: the template's own model from config.yaml.
ESTIMATOR = os.environ.get("BENCH_SERVING_ESTIMATOR")


# The image runs compiled bytecode (Dockerfile: UV_COMPILE_BYTECODE=1). So that time to ready never
# times the compiler (about half of it on these machines) whatever the environment it starts from
# (a venv installed without bytecode, PYTHONDONTWRITEBYTECODE set by a runner), the servers get
# bytecode compiled once into this folder (Python's pycache prefix: nothing is written elsewhere).
PYCACHE = ROOT / "build" / "bench-pycache"


def bytecode_env() -> dict[str, str]:
    """This environment, with bytecode read from (and written to) PYCACHE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(PYCACHE)}


def compile_bytecode() -> None:
    """Compile the environment's and the repository's modules into PYCACHE (a later run finds
    them up to date and compiles nothing)."""
    paths = [
        sysconfig.get_paths()["purelib"],
        *(str(ROOT / d) for d in ("core", "serving", "bench")),
    ]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *paths],
        env=bytecode_env(),
        stdout=subprocess.DEVNULL,
        check=False,  # a module that does not compile (a test fixture of a package) is not ours
    )


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total_kb, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total_kb += int(m.group(1)) if m else 0
    return total_kb / 1024


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    ready_s: float
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Each server was started in its own session: signal only that group.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_server(
    name: str, cmd: list[str], env: dict[str, str], ready_path: str, tmp: Path
) -> Running:
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    log = tmp / f"{name}.log"
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**bytecode_env(), **env, "PORT": str(port)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = started + 180
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + ready_path, timeout=2).status_code == 200:
                return Running(name, proc, url, time.perf_counter() - started, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    Running(name, proc, url, 0, log).stop()
    raise RuntimeError(f"{name} not ready in 180 s")


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    extra: dict[str, Any] = field(default_factory=dict)


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(url: str, script: Path, connections: int) -> WrkResult:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{DURATION_S}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=DURATION_S + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkResult(rps, _ms(lat.get("50", "nan")), _ms(lat.get("99", "nan")), errors, requests)


def write_lua(body: bytes, path: Path) -> Path:
    escaped = body.decode().replace("\\", "\\\\").replace("'", "\\'")
    path.write_text(
        f"wrk.method = 'POST'\nwrk.body = '{escaped}'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
    )
    return path


def ours_server(bundle: Path, config: Path, log_db: Path, lua: Path) -> peers.Server:
    """Our service on a bundle, as the image starts it: uvicorn on the app factory, WORKERS
    workers sharing their metrics, the prediction log in SQLite at `log_db`."""
    env = {
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": str(WORKERS),
        "MODEL_BUNDLE": str(bundle),
        "CONFIG_PATH": str(config),
        "PREDICTION_LOG_URL": f"sqlite:///{log_db}",
    }
    return ("ours", [sys.executable, "-m", "serving.serve"], env, "/ready", "/predict", lua)


def mlflow_server(model_uri: str, tracking: str, lua: Path) -> peers.Server:
    """`mlflow models serve --env-manager local` on a logged model, WORKERS workers."""
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    cmd = [mlflow, "models", "serve", "-m", model_uri, "--env-manager", "local"]
    env = {
        "MLFLOW_TRACKING_URI": tracking,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # mlflow execs `uvicorn` from PATH: the one of this environment
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    args = ["-h", "127.0.0.1", "-p", "{port}", "-w", str(WORKERS)]
    return ("mlflow", [*cmd, *args], env, "/ping", "/invocations", lua)


def mlflow_body(record: dict[str, Any]) -> bytes:
    """One record as `mlflow models serve` takes it (pandas split orientation)."""
    return orjson.dumps(
        {"dataframe_split": {"columns": list(record), "data": [list(record.values())]}}
    )


def _prepare(tmp: Path) -> dict[str, Any]:
    """Fit the template's default model once; write our bundle (as `make package` does: the
    compiled form and probes beside the model) and log the pipeline to a temporary MLflow."""
    from core.config import load_config
    from core.data import read_table
    from core.frames import feature_frame

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["data"]["path"] = str(ROOT / raw["data"]["path"])
    if ESTIMATOR:
        raw["model"] = {**raw["model"], "estimator": ESTIMATOR, "params": {}}
    raw["serving"] = {
        **raw.get("serving", {}),
        "max_batch": BATCH_ROWS,
        "max_body_bytes": 50_000_000,
    }
    config_path = tmp / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_config(config_path)
    frame = read_table(config.data_path)
    bundle, pipeline = fit_bundle(
        tmp / "bundle",
        config,
        frame,
        bench_metadata(config),
    )
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import mlflow
    import sklearn

    tracking = f"sqlite:///{tmp}/mlflow.db"
    mlflow.set_tracking_uri(tracking)
    experiment = mlflow.create_experiment("bench-serving", artifact_location=str(tmp / "artifacts"))
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(
            pipeline,
            name="model",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            skops_trusted_types=[
                "numpy.dtype",
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
                "sklearn.tree._tree.Tree",
            ],
        )
    sample = frame.sample(BATCH_ROWS, replace=True, random_state=0)
    rows = feature_frame(sample, config.contract)
    booleans = {f.name for f in config.contract.features if f.type.value == "boolean"}
    # What a client sends: JSON types (true/false for booleans, null for a missing value).
    records = [
        {
            k: None if isinstance(v, float) and v != v else bool(v) if k in booleans else v
            for k, v in r.items()
        }
        for r in rows.astype(object).to_dict("records")
    ]
    one = records[0]
    return {
        "pipeline": pipeline,
        "bundle": bundle,
        "config": config_path,
        "tracking": tracking,
        "model_uri": f"runs:/{run.info.run_id}/model",
        "rows": rows,
        "records": records,
        "ours_body": orjson.dumps(one),
        "mlflow_body": mlflow_body(one),
    }


def _batch_timing(
    url: str, records: list[dict[str, Any]], rows: Any, pipeline: Any
) -> dict[str, float]:
    """Median seconds of /predict/batch, the rows sent as records and as columns, vs in-process
    predict_proba on the same rows; the scores of both bodies are checked against it."""
    bodies = {
        "records": orjson.dumps({"records": records}),
        "columns": orjson.dumps({"columns": {k: [r[k] for r in records] for k in records[0]}}),
    }
    expected = pipeline.predict_proba(rows)[:, 1]
    timings: dict[str, float] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        # The load points before logged ~100,000 rows: time the batch, not the log catching up.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            depth = re.search(
                r"^prediction_log_queue_depth (\S+)$", client.get("/metrics").text, re.M
            )
            if depth is not None and float(depth.group(1)) == 0:
                break
            time.sleep(0.5)
        for shape, body in bodies.items():
            http_s: list[float] = []
            for _ in range(8):
                started = time.perf_counter()
                r = client.post(
                    "/predict/batch", content=body, headers={"Content-Type": "application/json"}
                )
                http_s.append(time.perf_counter() - started)
                r.raise_for_status()
                time.sleep(0.5)  # let the log writer take its rows between calls
            answer = r.json()
            scores = (
                [p["probability"] for p in answer["predictions"]]
                if shape == "records"
                else answer["probabilities"]
            )
            worst = max(abs(a - b) for a, b in zip(scores, expected, strict=True))
            if worst > 1e-6:
                raise SystemExit(f"/predict/batch ({shape}) differs from predict_proba by {worst}")
            timings[shape] = statistics.median(http_s[2:])
    local_s = []
    for _ in range(8):
        started = time.perf_counter()
        pipeline.predict_proba(rows)
        local_s.append(time.perf_counter() - started)
    return {**timings, "local": statistics.median(local_s[2:])}


def main() -> int:
    """Run the comparison and print its table; 2 when wrk is missing."""
    if shutil.which("wrk") is None:
        print("wrk is not installed: this benchmark needs Debian's wrk (apt-get install -y wrk)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        print(
            f"fitting the default model, logging it to a temporary MLflow store ({tmp})", flush=True
        )
        prep = _prepare(tmp)
        print(f"compiling bytecode into {PYCACHE}, as the image has it …", flush=True)
        compile_bytecode()
        ours_lua = write_lua(prep["ours_body"], tmp / "ours.lua")
        mlflow_lua = write_lua(prep["mlflow_body"], tmp / "mlflow.lua")
        uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
        common = ["--workers", str(WORKERS), "--no-access-log"]
        servers = [
            ours_server(prep["bundle"], prep["config"], tmp / "predictions.db", ours_lua),
            mlflow_server(prep["model_uri"], prep["tracking"], mlflow_lua),
            (
                "ceiling",
                [*uvicorn, *common, "--factory", "bench.ceiling:ceiling_app"],
                {},
                "/ready",
                "/predict",
                ours_lua,
            ),
        ]
        servers[1:1] = peers.v2_servers(servers[0], prep, tmp, WORKERS, write_lua)
        results: dict[str, dict[Any, Any]] = {}
        for name, cmd, env, ready, path, lua in servers:
            print(f"starting {name} ({WORKERS} workers) …", flush=True)
            server = start_server(name, cmd, env, ready, tmp)
            try:
                res: dict[Any, Any] = {"ready_s": server.ready_s}
                peers.check_answer(name, server.url, path, prep, res)
                for c in CONCURRENCY:
                    res[c] = run_wrk(server.url + path, lua, c)
                    print(
                        f"  {name} c={c}: {res[c].rps:,.0f} req/s, p50 {res[c].p50_ms:.1f} ms, "
                        f"p99 {res[c].p99_ms:.1f} ms, errors {res[c].errors}",
                        flush=True,
                    )
                res["rss_mb"] = tree_rss_mb(server.proc.pid)
                if name == "ours":
                    res["scoring"] = httpx.get(server.url + "/model").json()["scoring"]
                    res["batch"] = _batch_timing(
                        server.url, prep["records"], prep["rows"], prep["pipeline"]
                    )
                results[name] = res
            finally:
                server.stop()
        print()
        results["ours"]["estimator"] = type(prep["pipeline"][-1]).__name__
        print(_report(results))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _report(results: dict[str, dict[Any, Any]]) -> str:
    from core.cli import table

    ours, ml, ceil = results["ours"], results["mlflow"], results["ceiling"]
    rows: list[dict[str, object]] = []
    for name, res in (
        ("ours", ours),
        *peers.named(results),
        ("mlflow models serve", ml),
        ("constant FastAPI (ceiling)", ceil),
    ):
        rows.append(
            {
                "server": name,
                "req/s c=8": f"{res[8].rps:,.0f}",
                "req/s c=64": f"{res[64].rps:,.0f}",
                "p50 c=8 ms": f"{res[8].p50_ms:.2f}",
                "p99 c=8 ms": f"{res[8].p99_ms:.1f}",
                "p99 c=64 ms": f"{res[64].p99_ms:.1f}",
                "errors": res[8].errors + res[64].errors,
                "RSS MB": f"{res['rss_mb']:.0f}",
                "ready s": f"{res['ready_s']:.1f}",
            }
        )
    throughput = ours[64].rps / max(ml[64].rps, 1e-9)
    latency = ours[8].p50_ms / ml[8].p50_ms
    timing = ours["batch"]
    local_ms = timing["local"] * 1e3
    batch_rows: list[dict[str, object]] = [
        {
            "measure": f"/predict/batch {BATCH_ROWS:,} rows as {shape} vs in-process predict_proba",
            "value": f"{timing[shape] / timing['local']:.2f}x "
            f"({timing[shape] * 1e3:.0f} vs {local_ms:.0f} ms)",
            "target": "≤ 1.5x",
            "met": "yes" if timing[shape] <= 1.5 * timing["local"] else "NO",
        }
        for shape in ("records", "columns")
    ]
    checks: list[dict[str, object]] = [
        {
            "measure": "req/s at c=64, ours / mlflow",
            "value": f"{throughput:.1f}x",
            "target": "≥ 30x",
            "met": "yes" if throughput >= 30 else "NO",
        },
        {
            "measure": "req/s at c=64, ours / ceiling",
            "value": f"{ours[64].rps / ceil[64].rps:.0%}",
            "target": "(report)",
            "met": "",
        },
        {
            "measure": "p50 at c=8, ours / mlflow",
            "value": f"1/{1 / latency:.0f}",
            "target": "≤ 1/20",
            "met": "yes" if latency <= 1 / 20 else "NO",
        },
        *batch_rows,
        *peers.checks(results),
        {
            "measure": "resident memory, ours / mlflow",
            "value": f"{ours['rss_mb'] / ml['rss_mb']:.2f}x",
            "target": "(report)",
            "met": "",
        },
        {
            "measure": "time to ready, ours / mlflow",
            "value": f"{ours['ready_s'] / ml['ready_s']:.2f}x",
            "target": "(report)",
            "met": "",
        },
    ]
    head = (
        f"model {ours['estimator']} ({ours['scoring']} scoring in ours); single-record POSTs, wrk 2 threads, {DURATION_S} s per point, {WORKERS} uvicorn "
        "workers each, same 2 cores as the servers"
    )
    return "\n".join([head, "", table(rows), "", table(checks)])


if __name__ == "__main__":
    raise SystemExit(main())
