"""A stopped service pages: real Prometheus, Alertmanager and service, a webhook on 127.0.0.1.

The rules are the ones `make alert-rules` renders, from a config whose `alerts.down_for` is a
few seconds; Alertmanager runs the shipped infra/alertmanager/alertmanager.yml with its webhook
placeholders pointed at this test's receiver and its waits shortened. Prometheus scrapes and
evaluates every second. The service runs on the session bundle; when it stops, ModelApiDown must
reach the on-call receiver (the critical route), not the chat one, within a bounded time.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.config import load_config
from core.net import free_port
from deploy import alerts
from tests.deploy.monitoring import start_alertmanager, start_prometheus, wait_scraped
from tests.serving.conftest import serving_config, start_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "alerts-test"
DOWN_FOR = "3s"
ARRIVES_WITHIN = 45.0  # seconds from the stop: scrape 1 s + for 3 s + evaluation + group_wait


class Webhook:
    """A chat or paging endpoint: records every Alertmanager notification by receiver path."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        found = []
        while not self.received.empty():
            found.append(self.received.get_nowait())
        return found

    def wait_for(
        self, match: Callable[[str, dict[str, Any]], bool], timeout: float
    ) -> tuple[str, dict[str, Any], float, list[tuple[str, dict[str, Any]]]]:
        """The first notification `match` accepts, when it came, and every one before it."""
        started, seen = time.monotonic(), []
        while (left := started + timeout - time.monotonic()) > 0:
            try:
                path, body = self.received.get(timeout=left)
            except queue.Empty:
                break
            if match(path, body):
                return path, body, time.monotonic() - started, seen
            seen.append((path, body))
        pytest.fail(f"no matching notification in {timeout} s; received {seen}")


def alertmanager_config(folder: Path, webhook: Webhook) -> Path:
    """The shipped config, each webhook pointed at the test's receiver (by receiver name)."""
    doc = yaml.safe_load((ROOT / "infra" / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in doc["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook.url}/{receiver['name']}"
    for route in [doc["route"], *doc["route"].get("routes", [])]:
        route["group_wait"] = "1s"
    doc["route"]["group_interval"] = "1s"
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def is_down_alert(path: str, body: dict[str, Any]) -> bool:
    return body.get("status") == "firing" and any(
        a["labels"].get("alertname") == "ModelApiDown" for a in body.get("alerts", [])
    )


def test_a_stopped_service_pages_the_on_call_receiver(
    tmp_path: Path,
    trained_bundle: Path,
    raw_config: dict[str, Any],
    write_config: Callable[..., Path],
    webhook: Webhook,
) -> None:
    def fast(raw: dict[str, Any]) -> None:
        raw["alerts"] = {"down_for": DOWN_FOR, "hold": DOWN_FOR, "window": "10s"}

    rules = tmp_path / "alerts.yaml"
    rules.write_text(alerts.rendered(load_config(write_config(fast)))[alerts.RULES_FILE])
    server = start_server(
        tmp_path, bundle=trained_bundle, config=serving_config(tmp_path, raw_config)
    )
    alertmanager = prometheus = None
    try:
        alertmanager = start_alertmanager(tmp_path / "am", alertmanager_config(tmp_path, webhook))
        prometheus = start_prometheus(
            tmp_path / "prometheus",
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "alerting": {
                    "alertmanagers": [
                        {
                            "static_configs": [
                                {"targets": [alertmanager.url.removeprefix("http://")]}
                            ]
                        }
                    ]
                },
                "scrape_configs": [
                    {
                        "job_name": alerts.JOB,
                        "static_configs": [
                            {
                                "targets": [server.url.removeprefix("http://")],
                                "labels": {"namespace": NAMESPACE},
                            }
                        ],
                    }
                ],
            },
        )
        wait_scraped(prometheus, alerts.JOB, 1)
        rules_loaded = httpx.get(prometheus.url + "/api/v1/rules").json()["data"]["groups"]
        assert {r["name"] for g in rules_loaded for r in g["rules"]} >= {"ModelApiDown"}
        time.sleep(2 * int(DOWN_FOR.removesuffix("s")))  # long enough for a false alarm to fire
        assert not [n for n in webhook.drain() if is_down_alert(*n)], "paged while it was up"

        server.stop()
        path, body, after, before = webhook.wait_for(is_down_alert, ARRIVES_WITHIN)
    finally:
        for process in (prometheus, alertmanager):
            if process is not None:
                process.stop()
        server.stop()
    print(f"ModelApiDown reached the webhook {after:.1f} s after the service stopped")
    assert path == "/on-call", f"a critical alert went to {path}"
    (alert,) = [a for a in body["alerts"] if a["labels"]["alertname"] == "ModelApiDown"]
    assert alert["labels"]["namespace"] == NAMESPACE
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].startswith(alerts.RUNBOOK)
    assert not [p for p, b in before if p == "/chat" and is_down_alert(p, b)]
