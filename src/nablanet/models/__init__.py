"""Models that are not a deep stack trained by backprop alone."""
from .ais import ais_log_partition, exact_log_partition
from .autoencoder import PCA, DeepAutoencoder
from .charlm import CharLM, Vocabulary
from .dbn import DBN
from .esn import EchoStateNetwork
from .linear import (Adaline, LinearRegression, LogisticRegression, Perceptron,
                     SoftmaxRegression)
from .rbm import RBM, ContrastiveDivergence

__all__ = ["Adaline", "CharLM", "ContrastiveDivergence", "DBN", "DeepAutoencoder",
           "EchoStateNetwork", "LinearRegression", "LogisticRegression", "PCA", "Perceptron",
           "RBM", "SoftmaxRegression", "Vocabulary", "ais_log_partition",
           "exact_log_partition"]
