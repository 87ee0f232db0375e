"""Fill in a new fork (the tasks `copier copy` and `copier update` run, see copier.yml).

Usage:
  python3 tools/fork_setup.py placeholders --project NAME --repository OWNER/NAME --registry HOST
  python3 tools/fork_setup.py data FILE --target COLUMN [--id COLUMN] [--project NAME]

`placeholders` writes the fork's names where the template has its own (`your-org`, the Argo CD
`repoURL`, the overlays' image, the image's source and title labels, the README title); it is
idempotent, so copier runs it on every copy and update. `data` copies a table into data/ and runs
`make init` on it. Standard library only: copier runs it with any Python 3, before `.venv` exists.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_REPOSITORY = "your-org/mlops-gitops-template"
TEMPLATE_IMAGE = f"ghcr.io/{TEMPLATE_REPOSITORY}"
README_TITLE = "# GitOps CI/CD template for tabular machine learning"
IMAGE_TITLE = 'org.opencontainers.image.title="mlops-gitops-template model service"'
REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+$")
REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._-]+)*$")
PROJECT = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Names:
    """What the fork is called: its project, GitHub repository and image registry."""

    project: str
    repository: str
    registry: str

    @property
    def image(self) -> str:
        """The image repository the overlays pin (registries take lower case only)."""
        return f"{self.registry}/{self.repository}".lower()


@dataclass(frozen=True)
class Placeholder:
    """One name of the template's own, the files that hold it, and what replaces it."""

    text: str
    paths: tuple[str, ...]
    value: Callable[[Names], str]


PLACEHOLDERS = (
    Placeholder(
        f"https://github.com/{TEMPLATE_REPOSITORY}",
        (
            "Dockerfile",  # the image's org.opencontainers.image.source label
            "infra/argocd/staging.yaml",  # Argo CD's repoURL
            "infra/argocd/production.yaml",
        ),
        lambda n: f"https://github.com/{n.repository}",
    ),
    Placeholder(
        TEMPLATE_IMAGE,
        (
            "infra/k8s/overlays/staging/kustomization.yaml",
            "infra/k8s/overlays/production/kustomization.yaml",
        ),
        lambda n: n.image,
    ),
    Placeholder(
        IMAGE_TITLE,
        ("Dockerfile",),
        lambda n: f'org.opencontainers.image.title="{n.project} model service"',
    ),
    Placeholder(README_TITLE, ("README.md",), lambda n: f"# {n.project}"),
)


class SetupError(Exception):
    """A bad answer or a table `make init` refused: one line for the person."""


def check_names(names: Names) -> None:
    """Refuse names GitHub, a registry or the config would not take."""
    if not PROJECT.match(names.project):
        raise SetupError(f"project {names.project!r}: use lower-case letters, digits and dashes")
    if not REPOSITORY.match(names.repository):
        raise SetupError(f"repository {names.repository!r}: give it as OWNER/NAME")
    if not REGISTRY.match(names.registry):
        raise SetupError(f"registry {names.registry!r}: give a host such as ghcr.io")


def fill_placeholders(root: Path, names: Names) -> list[Path]:
    """Replace every placeholder in `root`; return the files changed (none on a second run)."""
    check_names(names)
    changed: list[Path] = []
    for placeholder in PLACEHOLDERS:
        for relative in placeholder.paths:
            path = root / relative
            if not path.is_file():
                continue  # the fork removed it: nothing to fill in
            text = path.read_text(encoding="utf-8")
            if placeholder.text in text:
                path.write_text(text.replace(placeholder.text, placeholder.value(names)))
                changed.append(path)
    return changed


def add_table(
    root: Path, source: Path, target: str, id_column: str | None, project: str | None
) -> Path:
    """Copy `source` into root/data/ and run `make init` on it there; return the copy."""
    source = source.expanduser()
    if not source.is_absolute():
        source = root / source
    if not source.is_file():
        raise SetupError(f"data file {source} not found: give an absolute path")
    copy = root / "data" / source.name
    if source.resolve() != copy.resolve():
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
    argv = ["make", "init", f"DATA=data/{copy.name}", f"TARGET={target}", "FORCE=1"]
    argv += [f"ID={id_column}"] if id_column else []
    argv += [f"PROJECT={project}"] if project else []
    done = subprocess.run(argv, cwd=root, check=False)
    if done.returncode != 0:
        raise SetupError(f"make init on {copy} failed (see above); fix the table or the target")
    return copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/fork_setup.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    names = commands.add_parser("placeholders", help="write the fork's names into its files")
    names.add_argument("--project", required=True)
    names.add_argument("--repository", required=True, help="OWNER/NAME on GitHub")
    names.add_argument("--registry", default="ghcr.io")
    data = commands.add_parser("data", help="copy a table into data/ and run make init on it")
    data.add_argument("file", type=Path)
    data.add_argument("--target", required=True)
    data.add_argument("--id", help="the id column, if the table has one")
    data.add_argument("--project", help="the project's name (default: from the file name)")
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        if args.command == "placeholders":
            filled = fill_placeholders(root, Names(args.project, args.repository, args.registry))
            print(f"✓ fork names: {len(filled)} files filled in")
        else:
            print(f"✓ data: {add_table(root, args.file, args.target, args.id, args.project)}")
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
