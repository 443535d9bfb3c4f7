"""evalfleet's error hierarchy: one root, one line each; the CLI turns them into clean messages."""


class EvalfleetError(Exception):
    """Base class for every error evalfleet raises on purpose."""


class ConfigurationError(EvalfleetError):
    """A setting is missing or wrong (database URL, broker URL, API key, option value)."""


class DatasetError(EvalfleetError):
    """A data set cannot be loaded: missing file, malformed record, missing field."""


class RunNotFoundError(EvalfleetError):
    """No run has the given id."""


class ServiceUnavailableError(EvalfleetError):
    """The database or the broker does not answer."""
