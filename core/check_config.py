"""Load and check the config file, and print the data contract as a table.

Usage: python -m core.check_config [--config config.yaml]
"""

from __future__ import annotations

import argparse

from core.cli import entry_point, step, table
from core.config import FeatureType, load_config


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    args = parser.parse_args(argv)
    with step(f"config {args.config}"):
        config = load_config(args.config)
    rows: list[dict[str, object]] = []
    for f in config.contract.features:
        if f.categories:
            allowed = ", ".join(f.categories)
        elif f.type is FeatureType.text:
            low, high = f.length_bounds
            allowed = f"{low or 0} … {high} characters"
        else:
            allowed = f"{'' if f.min is None else f.min} … {'' if f.max is None else f.max}"
            allowed = allowed.strip(" …")
        rows.append(
            {
                "feature": f.name,
                "type": f.type.value,
                "nullable": f.nullable,
                "allowed": allowed[:70],
            }
        )
    t = config.contract.target
    print(
        f"project {config.project}: target {t.name} ({t.negative} / positive {t.positive}), "
        f"{len(rows)} features, data {config.data.path}"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
