"""Models that are not a deep stack trained by backprop alone."""
from .linear import (Adaline, LinearRegression, LogisticRegression, Perceptron,
                     SoftmaxRegression)

__all__ = ["Adaline", "LinearRegression", "LogisticRegression", "Perceptron",
           "SoftmaxRegression"]
