"""Layers, one file per family; every layer registers itself for model files."""
from .activations import (ACTIVATIONS, Activation, LeakyReLU, Linear, ReLU, Sigmoid,
                          Softmax, Tanh)
from .base import LAYERS, Layer, register
from .dense import Dense
from .dropout import Dropout

__all__ = ["ACTIVATIONS", "Activation", "Dense", "Dropout", "LAYERS", "Layer", "LeakyReLU",
           "Linear", "ReLU", "Sigmoid", "Softmax", "Tanh", "register"]
