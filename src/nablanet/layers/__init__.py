"""Layers, one file per family; every layer registers itself for model files."""
from .activations import (ACTIVATIONS, Activation, LeakyReLU, Linear, ReLU, Sigmoid,
                          Softmax, Tanh)
from .augment import RandomDistortion
from .base import LAYERS, Layer, register
from .branch import Concat, Residual
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding, OneHot
from .gru import GRU
from .lstm import LSTM
from .norm import LocalResponseNorm
from .pool import AvgPool2D, MaxPool2D
from .recurrent import Recurrent, reset_states, set_stateful
from .rnn import SimpleRNN
from .sequence import LastStep, TimeDistributedDense
from .shape import Flatten, Reshape

__all__ = ["ACTIVATIONS", "Activation", "Dense", "Dropout", "LAYERS", "Layer", "LeakyReLU",
           "Linear", "ReLU", "Sigmoid", "Softmax", "Tanh", "register"]
__all__ += ["Embedding", "GRU", "LSTM", "LastStep", "OneHot", "Recurrent", "SimpleRNN",
            "TimeDistributedDense", "reset_states", "set_stateful"]
__all__ += ["Concat", "Residual"]
__all__ += ["AvgPool2D", "Conv2D", "Flatten", "LocalResponseNorm", "MaxPool2D",
            "RandomDistortion", "Reshape"]
