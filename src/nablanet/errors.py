"""The one exception family nablanet raises for bad input.

Every message names the problem in one line, so the CLI can print it and exit
non-zero without a traceback.
"""


class NablanetError(Exception):
    """Base class: anything the user can fix (input, files, configuration)."""


class DataError(NablanetError, ValueError):
    """Input arrays or data files are malformed (shape, NaN/inf, labels, checksum)."""


class ConfigError(NablanetError, ValueError):
    """A configuration value, flag or TOML key is invalid."""


class ModelFileError(NablanetError, ValueError):
    """A saved model is truncated, malformed or does not match its architecture."""


class DivergenceError(NablanetError, ArithmeticError):
    """Training produced a non-finite cost or non-finite weights."""


class BackendError(NablanetError, RuntimeError):
    """The requested array backend (e.g. CuPy on a GPU) is not available."""
