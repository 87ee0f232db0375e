"""Send simulated production traffic to a running service: real HTTP requests, then feedback.

Usage: python -m tools.simulate [--config config.yaml] --scenario none|covariate|prior|concept
       [-n 500] [--url http://127.0.0.1:8000] [--data held_out.csv] [--feedback-share 1.0]

Each row becomes `POST /predict` with the contract's features as JSON; the response's `request_id`
is then sent back with the row's label (flipped in the `concept` scenario) to `POST /feedback`.
Rows come from `--data` (default: the config's data file). Point it at rows the model was not
trained on, or live metrics on the feedback will look better than they are.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.cli import entry_point, step
from core.columns import LABEL, REQUEST_ID
from core.config import Contract, load_config
from core.data import read_table
from core.errors import ContractError, ServiceUnavailable
from core.frames import request_record
from core.settings import get_settings
from tools.scenarios import SCENARIOS, Traffic, generate


@dataclass(frozen=True)
class Sent:
    """Counts of what happened, for the summary line and the tests."""

    predicted: int
    rejected: int
    feedback: int


def label_name(label: int, contract: Contract) -> str:
    """Return the class name the feedback endpoint takes for a 0/1 label."""
    return contract.target.positive if label == 1 else contract.target.negative


def requests(traffic: Traffic, contract: Contract) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Yield (predict body, feedback label or None) per row."""
    for i, (_, row) in enumerate(traffic.rows.iterrows()):
        label = None if traffic.labels is None else label_name(int(traffic.labels[i]), contract)
        yield request_record(row, contract), label


def send(
    base_url: str,
    items: list[tuple[dict[str, Any], str | None]],
    *,
    api_key: str | None = None,
    feedback_share: float = 1.0,
    concurrency: int = 4,
    seed: int = 0,
    timeout: float = 10.0,
) -> Sent:
    """POST every item to /predict and, for a `feedback_share` of them, its label to /feedback."""
    import httpx

    headers = {"X-API-Key": api_key, "Authorization": f"Bearer {api_key}"} if api_key else {}
    give_feedback = np.random.default_rng(seed).random(len(items)) < feedback_share
    with httpx.Client(base_url=base_url, headers=headers, timeout=timeout) as client:

        def one(i: int) -> tuple[int, int, int]:
            body, label = items[i]
            response = client.post("/predict", json=body)
            if 400 <= response.status_code < 500:
                return 0, 1, 0
            response.raise_for_status()
            if label is None or not give_feedback[i]:
                return 1, 0, 0
            request_id = response.json()[REQUEST_ID]
            client.post("/feedback", json={REQUEST_ID: request_id, LABEL: label}).raise_for_status()
            return 1, 0, 1

        try:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                counts = list(pool.map(one, range(len(items))))
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"the service at {base_url} cannot be reached: {exc}"
            ) from None
        except httpx.HTTPStatusError as exc:
            raise ServiceUnavailable(
                f"the service at {base_url} answered {exc.response.status_code} to "
                f"{exc.request.method} {exc.request.url.path}"
            ) from None
    return Sent(*(sum(c[k] for c in counts) for k in range(3)))


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--scenario", choices=SCENARIOS, default="none")
    parser.add_argument("-n", type=int, default=500, help="number of requests")
    parser.add_argument("--url", help="service base URL (default: http://HOST:PORT)")
    parser.add_argument("--data", type=Path, help="rows to draw from (default: the config's data)")
    parser.add_argument("--strength", type=float, help="scenario strength (see tools/scenarios.py)")
    parser.add_argument("--feedback-share", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    settings = get_settings()
    url = args.url or f"http://{settings.host}:{settings.port}"
    path = args.data or config.data_path
    frame = read_table(path, "parquet" if path.suffix == ".parquet" else config.data.format)
    if not 0 <= args.feedback_share <= 1:
        raise ContractError(f"--feedback-share must be in [0, 1], got {args.feedback_share}")
    traffic = generate(frame, config.contract, args.scenario, args.n, args.seed, args.strength)
    items = list(requests(traffic, config.contract))
    key = settings.api_key.get_secret_value() if settings.api_key else None
    with step(f"simulate {args.scenario}: {args.n} requests to {url}"):
        sent = send(
            url,
            items,
            api_key=key,
            feedback_share=args.feedback_share,
            concurrency=args.concurrency,
            seed=args.seed,
        )
    changed = f"; changed: {', '.join(traffic.changed)}" if traffic.changed else ""
    print(
        f"{sent.predicted} predicted, {sent.rejected} rejected (4xx), {sent.feedback} feedback "
        f"labels{changed}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
