"""Exit 0 when the service in this container answers /health; the Dockerfile's HEALTHCHECK.

The slim base image has no curl; this uses only the standard library and the port uvicorn
listens on (UVICORN_PORT, read through the settings).
"""

from __future__ import annotations

import sys
import urllib.request

from core.settings import get_settings


def main() -> int:
    port = get_settings().port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
