"""Read the Dockerfile's final stage and turn its command into one that runs here, without Docker.

There is no container engine on the development machines, so `make stage` and the Dockerfile test
run the image's exact CMD/ENTRYPOINT with the image's ENV, from the repository root. The container
filesystem is emulated by two path mappings: the final WORKDIR (where the image keeps the code)
becomes the repository root, and /tmp (the only writable place in the pod) becomes a scratch folder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import DeployError

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class ImageSpec:
    """What the final stage of a Dockerfile says about how its container starts."""

    env: dict[str, str]
    workdir: str
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> list[str]:
        """The process the container runs: ENTRYPOINT followed by CMD."""
        return [*self.entrypoint, *self.cmd]


def _instructions(text: str) -> list[tuple[str, str]]:
    """Split a Dockerfile into (INSTRUCTION, arguments), joining continuation lines."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped by Docker too
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, rest = buffer.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buffer = ""
    if buffer.strip():
        raise DeployError("Dockerfile ends inside a continued line (trailing backslash)")
    return out


def _substitute(value: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


def _pairs(args: str, env: dict[str, str]) -> dict[str, str]:
    """Parse `ENV`/`LABEL` arguments (key=value pairs, or the legacy `ENV key value`)."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: _substitute(" ".join(words[1:]), env)}
    pairs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise DeployError(f"Dockerfile: cannot parse {word!r} in {args!r} (expected key=value)")
        pairs[key] = _substitute(value, {**env, **pairs})
    return pairs


def _exec_form(keyword: str, args: str) -> list[str]:
    try:
        value = json.loads(args)
    except ValueError:
        raise DeployError(
            f"Dockerfile: {keyword} must be in exec form (a JSON list), got {args!r}"
        ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DeployError(f"Dockerfile: {keyword} must be a JSON list of strings, got {args!r}")
    return value


def parse_dockerfile(path: str | Path, base_env: dict[str, str] | None = None) -> ImageSpec:
    """Return the final stage's ENV, WORKDIR, ENTRYPOINT, CMD, HEALTHCHECK, USER and LABELs.

    `base_env` stands in for the base image's environment (for `${PATH}` in an ENV value).
    Build arguments are substituted with their defaults.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DeployError(f"Dockerfile {path} not found") from None
    args: dict[str, str] = {}
    stage: dict[str, object] | None = None
    for keyword, rest in _instructions(text):
        if keyword == "ARG":
            # One or several `NAME` or `NAME=default` words.
            for word in shlex.split(rest):
                name, _, default = word.partition("=")
                args[name] = _substitute(default, args)
        elif keyword == "FROM":
            stage = {"env": dict(base_env or {}), "workdir": "/", "labels": {}}
        elif stage is None:
            continue
        elif keyword == "ENV":
            env = stage["env"]
            assert isinstance(env, dict)
            env.update(_pairs(rest, {**args, **env}))
        elif keyword == "LABEL":
            labels = stage["labels"]
            assert isinstance(labels, dict)
            labels.update(_pairs(rest, args))
        elif keyword == "WORKDIR":
            stage["workdir"] = os.path.join(str(stage["workdir"]), _substitute(rest, args))
        elif keyword in {"CMD", "ENTRYPOINT"}:
            stage[keyword.lower()] = _exec_form(keyword, rest)
        elif keyword == "HEALTHCHECK":
            _, _, command = rest.partition("CMD ")
            stage["healthcheck"] = _exec_form("HEALTHCHECK CMD", command.strip())
        elif keyword == "USER":
            stage["user"] = rest
    if stage is None:
        raise DeployError(f"{path}: no FROM instruction")
    return ImageSpec(**stage)  # type: ignore[arg-type]


def _rebase(value: str, workdir: str, root: Path, scratch: Path) -> str:
    """Map container paths inside one env value to this machine (WORKDIR → root, /tmp → scratch).

    One pass, so a mapped path is never mapped again (root itself may lie under /tmp).
    """
    mapping = {"/tmp": str(scratch)}
    if workdir.rstrip("/"):  # WORKDIR / (the default) maps nothing: every path would match
        mapping[workdir.rstrip("/")] = str(root)
    alternatives = "|".join(re.escape(inside) for inside in sorted(mapping, key=len, reverse=True))
    return re.sub(rf"(?<![\w.])({alternatives})(?=/|:|$)", lambda m: mapping[m.group(1)], value)


def local_process(
    spec: ImageSpec, root: Path, scratch: Path, overrides: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """Return (argv, env) that start the image's command here, from `root`, with its ENV.

    Every ENV value has its container paths mapped; `overrides` (for example a free port and
    127.0.0.1 instead of 0.0.0.0) are applied last and are the only deliberate differences.
    """
    if not spec.argv:
        raise DeployError("the Dockerfile's final stage has no CMD or ENTRYPOINT")
    env = {
        key: _rebase(value, spec.workdir, root.resolve(), scratch.resolve())
        for key, value in spec.env.items()
    }
    env = {**os.environ, **env, **(overrides or {})}
    return list(spec.argv), env
