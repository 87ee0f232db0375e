"""Files rendered from the config and committed: the command that writes or checks them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from core.config import Config, load_config
from core.io import atomic_write_text


def render_command(
    argv: list[str] | None,
    description: str,
    rendered: Callable[[Config], dict[Path, str]],
    stale: Callable[[Config, Path], list[str]],
    what: str,
    prune: Path | None = None,
) -> int:
    """Parse --config, --root, --check; write the rendered files, or (--check) fail on stale ones.

    `prune` is a folder of generated *.yaml files only: those the config no longer renders go.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--check", action="store_true", help="fail when a file is out of date")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.check:
        problems = stale(config, args.root)
        for line in problems:
            print(f"✗ {line}")
        if not problems:
            print(f"✓ {what} match the config")
        return 1 if problems else 0
    files = rendered(config)
    if prune is not None:
        for path in set((args.root / prune).glob("*.yaml")) - {args.root / p for p in files}:
            path.unlink()
            print(f"✓ removed {path}")
    for path, text in files.items():
        atomic_write_text(args.root / path, text)
        print(f"✓ wrote {path}")
    return 0
