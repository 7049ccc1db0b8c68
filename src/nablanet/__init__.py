"""nablanet: classic neural networks with every backward pass written out."""
from .backend import get_backend, make_rng, to_host
from .costs import CrossEntropy, LogLikelihood, Quadratic, get_cost
from .errors import (BackendError, ConfigError, DataError, DivergenceError, ModelFileError,
                     NablanetError)
from .net import Sequential, mlp
from .optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop, get_optimizer
from .regularizers import L1, L2, MaxNorm

__version__ = "0.1.0"

__all__ = ["AdaGrad", "Adam", "BackendError", "ConfigError", "CrossEntropy", "DataError",
           "DivergenceError", "L1", "L2", "LogLikelihood", "MaxNorm", "ModelFileError",
           "Momentum", "NablanetError", "Nesterov", "Quadratic", "RMSprop", "SGD",
           "Sequential", "get_backend", "get_cost", "get_optimizer", "make_rng", "mlp",
           "to_host"]
