"""Layers, one file per family; every layer registers itself for model files."""
from .activations import (ACTIVATIONS, Activation, LeakyReLU, Linear, ReLU, Sigmoid,
                          Softmax, Tanh)
from .base import LAYERS, Layer, register
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding, OneHot
from .gru import GRU
from .lstm import LSTM
from .recurrent import Recurrent, reset_states, set_stateful
from .rnn import SimpleRNN
from .sequence import LastStep, TimeDistributedDense

__all__ = ["ACTIVATIONS", "Activation", "Dense", "Dropout", "LAYERS", "Layer", "LeakyReLU",
           "Linear", "ReLU", "Sigmoid", "Softmax", "Tanh", "register"]
__all__ += ["Embedding", "GRU", "LSTM", "LastStep", "OneHot", "Recurrent", "SimpleRNN",
            "TimeDistributedDense", "reset_states", "set_stateful"]
