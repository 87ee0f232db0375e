"""Local staging: start the service exactly as the image does, smoke-test it, stop it cleanly.

Usage: python -m deploy.stage [--config config.yaml] [--dockerfile Dockerfile] [--rows 5]
                              [--engine auto|container|process] [--url URL]

Where docker (with an engine) or podman is installed, the image itself is built (`make image`'s
code) and run hardened as the manifests run it (`--engine container`). Elsewhere the command,
environment and working directory come from the Dockerfile's final stage (`deploy.image`), so
what runs here is what the container runs; the only deliberate differences
are the address (127.0.0.1 and a free port instead of 0.0.0.0:8000), the bundle and config paths,
and /tmp mapped to a scratch folder. Requests are built from the data contract and real rows of
the configured data; the report goes to REPORTS_DIR/stage/smoke.json.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from core.bundle import Bundle, load_bundle
from core.cli import entry_point, step
from core.columns import LABEL, MODEL_VERSION, PROBABILITIES, PROBABILITY, VALUE
from core.config import Config, Contract, FeatureType, TaskType, load_config
from core.data import read_table
from core.errors import DeployError, ServiceUnavailable
from core.frames import feature_frame, request_records
from core.io import atomic_write_json
from core.net import free_port
from core.settings import get_settings
from core.task import model_scores
from deploy.build_image import build_image
from deploy.containers import container_env, run_argv, runtime
from deploy.image import local_process, parse_dockerfile

# The serving interface this smoke test relies on (issue 6): POST /predict takes one record as a
# JSON object of contract features and answers with PROBABILITY, LABEL and MODEL_VERSION.
# Served and in-process probabilities may differ by float rounding (the compiled numpy path).
TOLERANCE = 1e-4
# The image `make stage` builds and runs when a container engine is here.
STAGE_TAG = "model-service:stage"
# How long `make smoke URL=…` waits for the service to report the bundle's version (Argo CD sync
# and the rollout), and how often it asks: override with SMOKE_WAIT_SECONDS / --wait.
WAIT_SECONDS = 300.0
POLL_SECONDS = 2.0


@dataclass
class Service:
    """A running service process started from the image's command."""

    process: subprocess.Popen[bytes]
    url: str
    argv: list[str]
    overrides: dict[str, str]
    log: Path
    ready_after: float = math.nan
    exit_code: int | None = None
    stop_seconds: float = math.nan

    def log_tail(self, lines: int = 15) -> str:
        """The last non-empty lines the service printed."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])

    def first_error(self) -> str:
        """The first line of the log that reports an error (the cause), else its last line."""
        lines = self.log_tail(200).splitlines()
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or ["(no output)"])[0 if errors else -1].strip()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll /ready until it answers 200; raise if the process dies or time runs out."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise ServiceUnavailable(
                    f"the service exited with code {self.process.returncode} before it was "
                    f"ready: {self.first_error()!r} (whole log: {self.log})"
                )
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    self.ready_after = time.monotonic() - started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise ServiceUnavailable(
            f"the service was not ready within {timeout:.0f} s: {self.first_error()!r} "
            f"(whole log: {self.log})"
        )

    def stop(self, timeout: float = 30.0) -> int:
        """Send SIGTERM (what Kubernetes sends) and wait; kill the group only if it hangs."""
        if self.exit_code is not None:
            return self.exit_code
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.exit_code = -int(signal.SIGKILL)
        self.stop_seconds = time.monotonic() - started
        return self.exit_code


@contextmanager
def image_service(
    dockerfile: Path, bundle: Path, config: Path, scratch: Path, log: Path
) -> Iterator[Service]:
    """Start the Dockerfile's command from its folder on a free 127.0.0.1 port; stop it on exit."""
    root = dockerfile.resolve().parent
    settings = get_settings()
    spec = parse_dockerfile(dockerfile, base_env={"PATH": os.environ.get("PATH", "")})
    port = free_port()
    overrides = {
        "UVICORN_HOST": "127.0.0.1",
        "UVICORN_PORT": str(port),
        "MODEL_BUNDLE": str(bundle.resolve()),
        "CONFIG_PATH": str(config.resolve()),
        # The image bakes in the digest it was built with; here, this run's anchor and its rule.
        "MODEL_DIGEST": settings.model_digest or "",
        "REQUIRE_MODEL_DIGEST": str(settings.anchor_required).lower(),
    }
    argv, env = local_process(spec, root, scratch, overrides)
    env.pop("API_KEY", None)  # the smoke test calls /predict without a key, as local use does
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a hung server can be killed whole
        )
    service = Service(process, f"http://127.0.0.1:{port}", argv, overrides, log)
    try:
        yield service
    finally:
        service.stop()


@contextmanager
def container_service(
    tool: str, dockerfile: Path, bundle: Path, config: Path, log: Path, tag: str = STAGE_TAG
) -> Iterator[Service]:
    """Build the image with `bundle` and `config` baked in, run it as the manifests do; stop it on exit.

    The container runs attached under `tool run`, so SIGTERM to that process reaches the service
    (signals are proxied) and its exit code is the service's.
    """
    build_image(bundle, tag, dockerfile, "docker" if tool == "docker" else "buildah", config)
    root = dockerfile.resolve().parent
    port = free_port()
    name = f"stage-{port}"
    # Without systemd, podman cannot schedule the periodic health check and says so in the log.
    extra = ("--rm", "--no-healthcheck") if tool == "podman" else ("--rm",)
    # Published on 127.0.0.1 only, and the smoke test calls /predict without a key as local use
    # does: authentication off, said explicitly (the image refuses to start with neither).
    argv = run_argv(
        tag, name=name, tool=tool, port=port, env={"AUTH": "off"}, detach=False, extra=extra
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            env=container_env(root),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    spec = parse_dockerfile(dockerfile)
    service = Service(process, f"http://127.0.0.1:{port}", spec.argv, {}, log)
    try:
        yield service
    finally:
        service.stop()
        subprocess.run(
            [tool, "rm", "--force", name], env=container_env(root), capture_output=True, check=False
        )


def sample_records(frame: pd.DataFrame, contract: Contract, n: int, seed: int) -> pd.DataFrame:
    """Pick `n` real rows: complete ones, plus one with a missing nullable value when there is one."""
    features = frame[contract.feature_names]
    required = [f.name for f in contract.features if not f.nullable]
    usable = features[features[required].notna().all(axis=1)]
    if usable.empty:
        raise DeployError("no row of the data has every non-nullable feature filled")
    with_null = usable[usable.isna().any(axis=1)]
    complete = usable[usable.notna().all(axis=1)]
    picks = [complete.sample(n=min(n - 1, len(complete)), random_state=seed)] if n > 1 else []
    if not with_null.empty:
        picks.append(with_null.sample(n=1, random_state=seed))
    return pd.concat(picks) if picks else usable.head(n)


def bad_record(record: dict[str, Any], contract: Contract) -> tuple[dict[str, Any], str]:
    """Break one field the contract forbids: an unknown category, else the wrong JSON type.

    A number field gets text; a text field gets a number (any string would be a text).
    """
    categorical = contract.of_type(FeatureType.categorical)
    target = categorical[0] if categorical else contract.features[0]
    broken = dict(record)
    if categorical:
        broken[target.name] = "__not_in_the_contract__"
    else:
        broken[target.name] = 12345 if target.type is FeatureType.text else "not-a-number"
    return broken, target.name


def served_score(body: dict[str, Any], contract: Contract) -> Any:
    """The score in one /predict answer, as the task gives it (None when it is missing)."""
    target = contract.target
    if target.type is TaskType.regression:
        return body.get(VALUE)
    if target.type is TaskType.multiclass:
        by_class = body.get(PROBABILITIES)
        if not isinstance(by_class, dict) or set(by_class) != set(target.classes):
            return None
        return [by_class[c] for c in target.classes]
    return body.get(PROBABILITY)


def answer_agrees(
    body: dict[str, Any], want: Any, threshold: float | None, contract: Contract
) -> bool:
    """The served score matches the bundle's in process, and so does the label it gives."""
    got = served_score(body, contract)
    values = got if isinstance(got, list) else [got]
    wanted = want if isinstance(want, list) else [want]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return False
    if any(
        abs(float(g) - float(w)) > TOLERANCE * max(1.0, abs(float(w)))
        for g, w in zip(values, wanted, strict=True)
    ):
        return False
    target = contract.target
    if target.type is TaskType.regression:
        return True
    if target.type is TaskType.multiclass:
        return body.get(LABEL) == target.classes[wanted.index(max(wanted))]
    assert threshold is not None, "a binary bundle carries its threshold"
    return label_agrees(body.get(LABEL), float(values[0]), threshold, contract)


def label_agrees(label: Any, probability: float, threshold: float, contract: Contract) -> bool:
    """The served label is the positive class exactly when the probability reaches the threshold."""
    positive = probability >= threshold
    if isinstance(label, str) and label in contract.target.classes:
        return (label == contract.target.positive) == positive
    if isinstance(label, bool | int):
        return bool(label) == positive
    return False


def smoke(
    service: Service | None,
    bundle: Bundle,
    config: Config,
    n_rows: int,
    *,
    url: str | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Call /health, /ready, /predict with real rows and one bad request; return the findings.

    With `service`, the process started here is also stopped with SIGTERM and its exit checked;
    with only `url` (a service running elsewhere: the image in CI, staging) it is left running.
    """
    contract = config.contract
    base_url = service.url if service is not None else url
    if base_url is None:
        raise DeployError("smoke needs a service or a URL")
    rows = sample_records(read_table(config.data_path, config.data.format), contract, n_rows, 0)
    expected = model_scores(bundle.pipeline, feature_frame(rows, contract), contract.target)
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: Any = None) -> None:
        checks.append({"name": name, "ok": bool(ok), "detail": detail})

    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=base_url, timeout=30, headers=headers) as client:
        for path in ("/health", "/ready"):
            response = client.get(path)
            check(f"GET {path} is 200", response.status_code == 200, response.status_code)
        predictions = []
        for record, want in zip(request_records(rows, contract), expected.tolist(), strict=True):
            response = client.post("/predict", json=record)
            body = response.json() if response.status_code == 200 else {}
            ok = (
                response.status_code == 200
                and answer_agrees(body, want, bundle.threshold, contract)
                and str(body.get(MODEL_VERSION)) == bundle.version
            )
            predictions.append({"status": response.status_code, "expected": want, "served": body})
            check("POST /predict matches the bundle in process", ok, predictions[-1])
        broken, field_name = bad_record(request_records(rows, contract)[0], contract)
        response = client.post("/predict", json=broken)
        check(
            f"POST /predict with a bad {field_name!r} is 422 naming it",
            response.status_code == 422 and field_name in response.text,
            {"status": response.status_code, "body": response.text[:500]},
        )
    report: dict[str, Any] = {"url": base_url}
    if service is not None:
        code = service.stop()
        check("SIGTERM stops the service with exit code 0", code == 0, code)
        report |= {
            "command": service.argv,
            "env_overrides": service.overrides,
            "ready_after_s": round(service.ready_after, 2),
            "stop_after_s": round(service.stop_seconds, 2),
        }
    return {
        "passed": all(c["ok"] for c in checks),
        **report,
        "model": {"name": bundle.metadata.get("model_name"), "version": bundle.version},
        "checks": checks,
        "predictions": predictions,
    }


def wait_for_version(
    url: str,
    version: str,
    timeout: float,
    *,
    api_key: str | None = None,
    interval: float = POLL_SECONDS,
) -> float:
    """Poll GET /model until it reports `version`; return the seconds waited.

    A deploy is a GitOps commit that Argo CD syncs later: until then the old version (or nothing)
    answers, and the smoke checks would test the wrong model. Raise DeployError naming both
    versions when `timeout` passes first.
    """
    started = time.monotonic()
    seen = "nothing"
    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
        while True:
            seen = _served_version(client)
            waited = time.monotonic() - started
            if seen == f"version {version}":
                return waited
            if waited >= timeout:
                raise DeployError(
                    f"{url} still serves {seen} after {timeout:.0f} s, not the bundle's version "
                    f"{version}: has the deploy synced? (SMOKE_WAIT_SECONDS=… waits longer)"
                )
            time.sleep(min(interval, max(timeout - waited, 0.0)))


def _served_version(client: httpx.Client) -> str:
    """Say what GET /model reports: `version N`, an HTTP status, or no answer."""
    try:
        response = client.get("/model")
        if response.status_code != 200:
            return f"HTTP {response.status_code} on /model"
        return f"version {response.json().get('version')}"
    except (httpx.TransportError, ValueError) as exc:
        return f"no answer ({type(exc).__name__})"


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml", type=Path)
    parser.add_argument("--dockerfile", default="Dockerfile", type=Path)
    parser.add_argument("--rows", default=5, type=int, help="real rows to send to /predict")
    parser.add_argument(
        "--url", help="smoke-test a service already running there (the image, staging) instead"
    )
    parser.add_argument(
        "--engine",
        choices=["auto", "container", "process"],
        default="auto",
        help="container: build and run the image (docker, else podman); process: run the image's "
        "command here; auto: container when docker or podman is installed",
    )
    parser.add_argument(
        "--wait",
        default=WAIT_SECONDS,
        type=float,
        help=f"with --url: seconds to wait for /model to report the bundle's version (default {WAIT_SECONDS:.0f})",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    config = load_config(args.config)
    out_dir = settings.reports_dir / "stage"
    report_path = out_dir / ("smoke-url.json" if args.url else "smoke.json")
    with step("bundle verified and loaded", str(settings.model_bundle)):
        bundle = load_bundle(settings.model_bundle)
    if args.url:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        with step(f"{args.url} serves version {bundle.version}"):
            waited = wait_for_version(args.url, bundle.version, args.wait, api_key=key)
        with step(f"smoke test of {args.url}", str(report_path)):
            try:
                report = smoke(None, bundle, config, args.rows, url=args.url, api_key=key)
            except httpx.TransportError as exc:
                raise stopped_answering(exc, None) from None
            report["waited_for_version_s"] = round(waited, 1)
            atomic_write_json(report_path, report)
        return _verdict(report, report_path, f"service at {args.url}")
    tool = runtime() if args.engine != "process" else None
    if args.engine == "container" and tool is None:
        raise DeployError("--engine container: neither a Docker engine nor podman is here")
    with (
        tempfile.TemporaryDirectory(prefix="stage-tmp-") as scratch,
        (
            container_service(
                tool, args.dockerfile, settings.model_bundle, args.config, out_dir / "server.log"
            )
            if tool
            else image_service(
                args.dockerfile,
                settings.model_bundle,
                args.config,
                Path(scratch),
                out_dir / "server.log",
            )
        ) as service,
    ):
        how = f"in a {tool} container of {STAGE_TAG}" if tool else "as a process here"
        with step(f"service started {how} with the image's command ({' '.join(service.argv)})"):
            service.wait_ready()
        with step("smoke test", str(report_path)):
            try:
                report = smoke(service, bundle, config, args.rows)
            except httpx.TransportError as exc:
                raise stopped_answering(exc, service) from None
            atomic_write_json(report_path, report)
    return _verdict(report, report_path, "local staging")


def stopped_answering(exc: httpx.TransportError, service: Service | None) -> DeployError:
    """Ready, then gone mid-smoke (a worker failed to start and took the server down): one line."""
    where = f": {service.first_error()!r} (whole log: {service.log})" if service else ""
    return DeployError(
        f"the service stopped answering during the smoke test ({type(exc).__name__}: {exc}){where}"
    )


def _verdict(report: dict[str, Any], report_path: Path, what: str) -> int:
    """Turn a smoke report into one line and an exit code."""
    failed = [c["name"] for c in report["checks"] if not c["ok"]]
    if failed:
        raise DeployError(f"{what} failed: {'; '.join(failed)} (see {report_path})")
    timing = (
        f", ready in {report['ready_after_s']} s, stopped in {report['stop_after_s']} s"
        if "ready_after_s" in report
        else ""
    )
    print(f"{what} passed: {len(report['checks'])} checks{timing} → {report_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
