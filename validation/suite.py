"""Build the Great Expectations suite from the contract rules and run it on one in-memory batch.

GX is imported here and only here, lazily: its import costs seconds and hundreds of MB, so
nothing on the serving path (and no module at import time) pulls it in.
"""

from __future__ import annotations

import os
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from core.config import Config
from core.errors import ConfigError
from core.io import atomic_dir
from core.rules import Rule, Scope

SUITE_NAME = "data-contract"
# BASIC keeps counts, observed values and a few unexpected values (enough to see the pattern);
# SUMMARY's extra value counts and row indexes cost about 40 % more on 1M rows.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 20}


@cache
def gx() -> ModuleType:
    """Import Great Expectations once per process, without its optional-Spark warnings."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with warnings.catch_warnings():
        # GX imports pyspark when it is installed (a dev dependency here); pyspark warns about
        # pandas 3 at import. Validation never uses Spark.
        warnings.simplefilter("ignore")
        import great_expectations
        import great_expectations.expectations
    return great_expectations


def expectations(rules: list[Rule], config: Config) -> list[Any]:
    """Instantiate one GX expectation per rule; `meta.rule` ties each result back to its rule."""
    gxe = gx().expectations
    built = []
    extra_index = 0
    for i, rule in enumerate(rules):
        kwargs = dict(rule.kwargs)
        meta = {**(kwargs.pop("meta", None) or {}), "rule": i, "check": str(rule.check)}
        try:
            built.append(getattr(gxe, rule.expectation)(**kwargs, meta=meta))
        except Exception as exc:  # GX raises pydantic errors or TypeError for bad arguments
            if rule.scope is not Scope.extra:
                raise
            detail = str(exc).replace("\n", " ")
            raise ConfigError(
                f"{config.source}: validation.extra_expectations[{extra_index}] "
                f"({rule.expectation}): {detail}"
            ) from None
        extra_index += rule.scope is Scope.extra
    return built


def suite(rules: list[Rule], config: Config) -> Any:
    """Return the GX ExpectationSuite generated from the rules."""
    return gx().ExpectationSuite(name=SUITE_NAME, expectations=expectations(rules, config))


def run_suite(
    frame: pd.DataFrame, rules: list[Rule], config: Config, docs_dir: Path | None = None
) -> dict[str, Any]:
    """Validate one batch (the whole frame) and return GX's result as a JSON-ready dict.

    With `docs_dir`, a checkpoint also renders Data Docs; they are built in a temporary folder
    beside it and swapped in by rename, so a reader never sees half of a site.
    """
    g = gx()
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = g.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("data")
        .add_dataframe_asset(config.project)
        .add_batch_definition_whole_dataframe("whole table")
    )
    definition = context.validation_definitions.add(
        g.ValidationDefinition(
            name=f"{config.project} contract",
            data=batch,
            suite=context.suites.add(suite(rules, config)),
        )
    )
    if docs_dir is None:
        result = definition.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)
        return dict(result.to_json_dict())
    with atomic_dir(docs_dir) as staging:
        # The ephemeral context comes with a site in a random temporary folder; use ours only.
        context.delete_data_docs_site("local_site")
        context.add_data_docs_site(
            site_name="reports",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(staging.resolve()),
                },
            },
        )
        checkpoint = context.checkpoints.add(
            g.Checkpoint(
                name=f"{config.project} checkpoint",
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="data docs", site_names=["reports"])],
                result_format=RESULT_FORMAT,
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frame})
        result = next(iter(outcome.run_results.values()))
    return dict(result.to_json_dict())
