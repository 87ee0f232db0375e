"""Domain errors: each names what is wrong and carries the exit code a command returns for it."""

from __future__ import annotations


class TemplateError(Exception):
    """Base of every error a command turns into one line and a non-zero exit code."""

    exit_code = 1


class ConfigError(TemplateError):
    """The config file is missing, unreadable, or breaks the schema."""

    exit_code = 2


class ContractError(TemplateError):
    """Data or a request does not fit the data contract."""

    exit_code = 3


class DataError(TemplateError):
    """A data file cannot be read (missing, empty, malformed, wrong encoding)."""

    exit_code = 3


class GateRejected(TemplateError):
    """The challenger failed the gate; nothing was registered."""

    exit_code = 4


class BundleIntegrityError(TemplateError):
    """A model bundle is incomplete or its files do not match the manifest."""

    exit_code = 5


class ServiceUnavailable(TemplateError):
    """An external service (MLflow server, database, git remote) cannot be reached."""

    exit_code = 6


class DeployError(TemplateError):
    """A deploy step refused its input (not a digest, unknown overlay) or its checks failed."""

    exit_code = 7


class ModelNotFound(TemplateError):
    """The registry holds no model version under the requested alias (train one first)."""

    exit_code = 8


class TemplateRenderError(TemplateError):
    """A report template in `templates/` is missing, malformed, or uses a value it is not given.

    It shares the config error's exit code: the templates are the text a fork configures.
    """

    exit_code = 2


class GitError(ServiceUnavailable):
    """A git command failed: its remote cannot be reached, or it refused what it was asked.

    Exit code 6 like any unreachable service, unless the caller's commands exit with their own
    (a deploy step's git failures exit 7, as its other failures do).
    """

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
