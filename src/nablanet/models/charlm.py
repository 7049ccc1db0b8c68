"""Character-level language models (lecture 8: Sutskever, Martens & Hinton's text model).

The net reads a text one character at a time and predicts the next one: a softmax over
the vocabulary at every step, trained with the log-likelihood cost. The cost is
reported in **nats per character** (mean −ln p(next char)) and bits per character
(nats / ln 2).

Training is truncated backprop through time: the training text is cut into
``batch_size`` parallel streams, each read in consecutive chunks of ``seq_length``
characters; the recurrent state is carried from one chunk to the next (so the net
sees an unbroken text) while the gradient is cut at chunk boundaries. Now and then
(``reset_probability`` per chunk) a stream restarts from the default state, so the
net also learns to read from the state that generation starts in.

Generation is the lecture's recipe: start from the default hidden state, give the net
a "burn-in" text and let it update its state after each character; then look at the
distribution it predicts for the next character, pick one at random from it (sharpened
or flattened by a temperature), tell the net that this was the character that
actually occurred, and repeat.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..backend import Backend, make_rng, to_host
from ..costs import get_cost
from ..errors import ConfigError, DataError, DivergenceError, ModelFileError
from ..io import load_model, save_model
from ..layers import LSTM, OneHot, Softmax, TimeDistributedDense, reset_states, set_stateful
from ..layers.embedding import check_indices, one_hot
from ..layers.recurrent import recurrent_layers
from ..net import Sequential
from ..optimizers import Adam, Optimizer
from ..training.bptt import sequence_step
from ..utils.state import number, whole_number

KIND = "char-lm"
LN2 = math.log(2.0)


def bits_per_char(nats: float) -> float:
    """Convert nats per character to bits per character (÷ ln 2)."""
    return nats / LN2


class Vocabulary:
    """The characters a model knows, sorted; a character's index is its input unit."""

    def __init__(self, symbols: str):
        if not isinstance(symbols, str):         # a list passed here, and saved, unloadable
            raise DataError(f"a vocabulary is a string of characters, got {symbols!r}")
        if not symbols:
            raise DataError("a vocabulary needs at least one character")
        if len(set(symbols)) != len(symbols) or list(symbols) != sorted(symbols):
            raise DataError("vocabulary characters must be unique and sorted")
        self.symbols = symbols
        self._codes = np.array([ord(c) for c in symbols], dtype=np.uint32)

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        if not text:
            raise DataError("the text is empty; a language model needs characters to read")
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str, what: str = "text") -> np.ndarray:
        """Character indices (int64); characters outside the vocabulary are a DataError."""
        if not isinstance(text, str):
            raise DataError(f"{what} must be a string, got {type(text).__name__}")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        idx = np.searchsorted(self._codes, codes)
        known = (idx < len(self._codes)) & (self._codes[np.minimum(idx, len(self) - 1)] == codes)
        if not known.all():
            unknown = sorted({text[i] for i in np.flatnonzero(~known)})
            shown = ", ".join(repr(c) for c in unknown[:10]) + (" …" if len(unknown) > 10 else "")
            raise DataError(f"{what} contains {len(unknown)} character(s) the model has never "
                            f"seen: {shown}")
        return idx.astype(np.int64)

    def decode(self, indices) -> str:
        indices = np.asarray(indices).reshape(-1)
        if indices.size:     # int() cut 1.7 to 1, and -1 read the vocabulary from its end
            check_indices(indices, len(self), "Vocabulary")
        return "".join(self.symbols[int(i)] for i in indices)


def char_lstm(n_symbols: int, n_hidden: int = 512, n_layers: int = 1, *,
              initial_state: str = "zeros", init: str = "glorot", seq_length: int = 100,
              backend: Backend | None = None, rng=None) -> Sequential:
    """One-hot characters → ``n_layers`` LSTM layers → a softmax over the vocabulary per step."""
    n_layers = whole_number(n_layers, "n_layers", 1, error=ConfigError)
    seq_length = whole_number(seq_length, "seq_length", 1, error=ConfigError)
    layers = [OneHot(n_symbols)]
    n_in = n_symbols
    for _ in range(n_layers):
        layers.append(LSTM(n_in, n_hidden, initial_state=initial_state, init=init))
        n_in = n_hidden
    layers += [TimeDistributedDense(n_hidden, n_symbols, init=init), Softmax()]
    return Sequential(layers).build((seq_length,), backend, rng)


class CharLM:
    """A sequence net whose inputs and outputs are the characters of ``vocabulary``."""

    def __init__(self, net: Sequential, vocabulary: Vocabulary):
        if not isinstance(net.layers[-1], Softmax):
            raise ConfigError("a character language model ends in a softmax over the vocabulary")
        if net.output_shape[-1] != len(vocabulary):
            raise ConfigError(f"the net predicts {net.output_shape[-1]} symbols but the "
                              f"vocabulary has {len(vocabulary)}")
        self.net, self.vocabulary = net, vocabulary

    # -- files ----------------------------------------------------------------------------
    def save(self, directory, metadata: dict | None = None) -> Path:
        meta = {"kind": KIND, "vocabulary": self.vocabulary.symbols, **(metadata or {})}
        return save_model(directory, self.net, "log-likelihood", metadata=meta)

    @classmethod
    def load(cls, directory, *, backend: Backend | None = None) -> "CharLM":
        net, _, meta = load_model(directory, backend=backend)
        if meta.get("kind") != KIND or not isinstance(meta.get("vocabulary"), str):
            raise ModelFileError(f"{directory}: not a character language model "
                                 "(no 'char-lm' kind and vocabulary in its metadata)")
        try:
            return cls(net, Vocabulary(meta["vocabulary"]))
        except (DataError, ConfigError) as exc:
            raise ModelFileError(f"{directory}: {exc}") from None

    # -- the two uses -----------------------------------------------------------------------
    def nats_per_char(self, ids, *, n_streams: int = 32, chunk: int = 100) -> float:
        """Mean −ln p(next character) over ``ids`` (indices), read as ``n_streams`` streams.

        Each stream starts from the default state and carries it across chunks, as in
        training; the last (len − 1) mod n_streams characters are left out.
        """
        chunk = whole_number(chunk, "chunk", 1, error=ConfigError)
        xs, ys = _streams(np.asarray(ids), n_streams)
        xp = self.net.backend.xp
        total = 0.0
        with _carried_state(self.net):
            for i in range(0, xs.shape[1], chunk):
                a, _ = self.net.forward(xp.asarray(xs[:, i:i + chunk]))
                total += _sum_neg_log(xp, a, xp.asarray(ys[:, i:i + chunk]))
        return total / ys.size

    def generate(self, prime: str, length: int, *, temperature: float = 1.0, rng=None) -> str:
        """``length`` characters sampled after burning in ``prime`` (see the module docstring).

        ``temperature`` T divides the log-probabilities: p ∝ exp(ln p / T); T < 1 picks
        the likely characters more often, T > 1 flattens the distribution.
        """
        if not number(temperature, "temperature", finite=False, error=ConfigError) > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        length = whole_number(length, "length", 0, error=ConfigError)
        ids = self.vocabulary.encode(prime, "the prime")
        if not len(ids):
            raise DataError("the prime (burn-in text) is empty; give at least one character")
        rng = make_rng(rng)
        picked = []
        with _carried_state(self.net):
            logits = self._logits(ids[None, :])                  # burn in: one step per char
            for _ in range(length):
                z = to_host(logits[0, -1]).astype(np.float64) / float(temperature)
                p = np.exp(z - z.max())
                p /= p.sum()
                k = int(rng.choice(len(p), p=p))                  # pick from the prediction ...
                picked.append(k)
                logits = self._logits(np.array([[k]]))           # ... and say it occurred
        return self.vocabulary.decode(picked)

    def _logits(self, ids):
        x = self.net.backend.xp.asarray(ids)
        for layer in self.net.layers[:-1]:                        # all but the softmax
            x, _ = layer.forward(x)
        return x


@dataclass
class TrainSettings:
    """The knobs of :func:`train_char_lm` (the char-lstm preset fills them in)."""

    batch_size: int = 32
    seq_length: int = 100
    eta: float = 2e-3
    clip: float | None = 5.0
    #: η decays linearly to ``eta * final_eta_fraction`` over the last ``decay_fraction``
    #: of the time budget (or of the epochs)
    decay_fraction: float = 0.5
    final_eta_fraction: float = 0.1
    epochs: int | None = None
    max_seconds: float | None = None
    #: validation passes under a time budget; a run of ``epochs`` alone has one an epoch
    eval_every_seconds: float = 120.0
    validation_streams: int = 32
    #: chance per chunk that a stream restarts from the default state (0: carry the state
    #: through the whole epoch). Generation and validation start from the default state;
    #: a net that only ever continues a carried state can be thrown by that start into a
    #: state it never met in training, and then predicts rare characters for good
    #: (measured, Tiny Shakespeare, 150 s: validation read as one stream 7.7 nats/char
    #: with 0, 1.95 with 0.1).
    reset_probability: float = 0.1

    def check(self) -> None:
        if self.epochs is None and self.max_seconds is None:
            raise ConfigError("give epochs or a time budget (max_seconds / --minutes)")
        # before these, epochs=0 or eta=0 ran a pass that learned nothing, a string clip was a
        # TypeError mid-step, and max_seconds=0 with no epochs read as "no budget": no end
        for name in ("batch_size", "seq_length", "validation_streams"):
            whole_number(getattr(self, name), name, 1, error=ConfigError)
        if self.epochs is not None:
            whole_number(self.epochs, "epochs", 1, error=ConfigError)
        for name, optional in (("eta", False), ("clip", True), ("max_seconds", True)):
            number(getattr(self, name), name, positive=True, optional=optional, error=ConfigError)
        number(self.eval_every_seconds, "eval_every_seconds", non_negative=True, error=ConfigError)
        for name in ("decay_fraction", "final_eta_fraction", "reset_probability"):
            if not 0 <= number(getattr(self, name), name, error=ConfigError) <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def train_char_lm(model: CharLM, train_text: str, validation_text: str,
                  settings: TrainSettings, *, optimizer: Optimizer | None = None,
                  on_evaluation: Callable[[dict, CharLM], None] | None = None,
                  log: Callable[[str], None] | None = print, rng=None) -> list[dict]:
    """Truncated-BPTT training with Adam and gradient clipping; returns the metric rows.

    ``rng`` draws the stream restarts (``settings.reset_probability``).
    The validation text's nats/char is measured at the end and, under a time budget,
    every ``eval_every_seconds``; a run bounded by epochs alone measures it after each
    epoch instead, so that its rows (and the best model ``on_evaluation`` keeps) do not
    depend on the clock and one seed gives a bit-identical run.
    ``on_evaluation(row, model)`` is called with each row (to save the best model).
    """
    settings.check()
    rng = make_rng(rng)
    vocab, net = model.vocabulary, model.net
    train_ids = vocab.encode(train_text, "the training text")
    val_ids = vocab.encode(validation_text, "the validation text")
    xs, ys = _streams(train_ids, settings.batch_size)
    optimizer = optimizer or Adam(settings.eta)
    eta0 = optimizer.eta
    cost = get_cost("log-likelihood")
    xp, dtype = net.backend.xp, net.backend.dtype
    n_symbols = len(vocab)
    chunks_per_epoch = math.ceil(xs.shape[1] / settings.seq_length)
    total_chunks = None if settings.epochs is None else settings.epochs * chunks_per_epoch

    start = time.perf_counter()
    rows: list[dict] = []
    step, seen = 0, 0
    train_sum, train_count = 0.0, 0
    last_eval = start

    eval_seconds = 0.0                  # the longest validation pass so far

    def progress() -> float:
        """The fraction of the budget used: by time, or by steps when only epochs are set.

        A time budget includes the final validation pass, so the time it will take is
        counted as spent already: measured when there was one, else estimated from the
        training speed (a forward pass costs about a third of a training step).
        """
        by_steps = step / total_chunks if total_chunks else 0
        if not settings.max_seconds:
            return by_steps
        elapsed = time.perf_counter() - start
        estimate = len(val_ids) / max(seen / max(elapsed, 1e-9), 1.0) / 2 if seen else 0.0
        reserve = 1.2 * max(eval_seconds, estimate)
        return max(by_steps, (elapsed + reserve) / settings.max_seconds)

    def evaluate(final: bool) -> dict:
        nonlocal train_sum, train_count, last_eval, eval_seconds
        began = time.perf_counter()
        with _saved_states(net):
            val = model.nats_per_char(val_ids, n_streams=settings.validation_streams,
                                      chunk=settings.seq_length)
        eval_seconds = max(eval_seconds, time.perf_counter() - began)
        train = train_sum / train_count if train_count else None
        row = {"step": step, "epochs": round(seen / xs.size, 3), "chars": seen,
               "seconds": round(time.perf_counter() - start, 2), "eta": optimizer.eta,
               "train_nats_per_char": train, "validation_nats_per_char": val,
               "validation_bits_per_char": bits_per_char(val), "final": final}
        rows.append(row)
        train_sum, train_count, last_eval = 0.0, 0, time.perf_counter()
        if log:
            recent = "—" if train is None else f"{train:.3f}"
            log(f"step {step:6d}  epoch {row['epochs']:6.2f}  {row['seconds']:6.0f}s  "
                f"η {optimizer.eta:.2e}  train {recent}  validation {val:.3f} nats/char "
                f"({bits_per_char(val):.3f} bits/char)")
        if on_evaluation:
            on_evaluation(row, model)
        return row

    done = False
    while not done:
        with _carried_state(net):
            for i in range(0, xs.shape[1], settings.seq_length):
                x = xp.asarray(xs[:, i:i + settings.seq_length])
                y_ids = xp.asarray(ys[:, i:i + settings.seq_length])
                optimizer.eta = eta0 * _decay(progress(), settings)
                if settings.reset_probability and i:
                    _restart_streams(net, rng.random(len(xs)) < settings.reset_probability)
                a = sequence_step(net, cost, optimizer, x, one_hot(xp, y_ids, n_symbols, dtype),
                                  clip=settings.clip)
                loss = _sum_neg_log(xp, a, y_ids)
                if not math.isfinite(loss):
                    raise DivergenceError(f"the training cost became {loss} at step {step}; "
                                          "lower eta or the clipping threshold")
                train_sum += loss / y_ids.size
                train_count += 1
                step += 1
                seen += int(y_ids.size)
                if progress() >= 1.0:
                    done = True
                    break
                if (settings.max_seconds
                        and time.perf_counter() - last_eval >= settings.eval_every_seconds):
                    evaluate(final=False)
            if not done and not settings.max_seconds:
                evaluate(final=False)           # an epoch count: by epoch, never by the clock
    evaluate(final=True)
    return rows


# -- helpers ------------------------------------------------------------------------------
def _streams(ids: np.ndarray, n_streams: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets as ``n_streams`` equal contiguous rows."""
    if ids.ndim != 1:
        raise DataError(f"expected a 1-D array of character indices, got shape {ids.shape}")
    n_streams = whole_number(n_streams, "n_streams", 1, error=ConfigError)
    length = (len(ids) - 1) // n_streams
    if length < 1:
        raise DataError(f"{len(ids)} characters are too few for {n_streams} streams "
                        "(each needs an input and a next character)")
    x = ids[:n_streams * length].reshape(n_streams, length)
    y = ids[1:n_streams * length + 1].reshape(n_streams, length)
    return x, y


def _restart_streams(net, restart: np.ndarray) -> None:
    """Put the streams flagged in ``restart`` back to the default state (zeros, or the
    learned h₀ — taken as a constant there, like any carried state)."""
    if not restart.any():
        return
    for layer in recurrent_layers(net):
        if layer.state is not None:
            rows = layer.backend.xp.asarray(np.flatnonzero(restart))
            for name, s in zip(layer.state_names, layer.state):
                s[rows] = layer.params[f"{name}0"] if layer.initial_state == "learned" else 0


def _sum_neg_log(xp, a, y_ids) -> float:
    """Σ −ln a[target] over every prediction (a: (B, T, V) probabilities)."""
    p = xp.take_along_axis(a, y_ids[..., None], axis=-1)
    return -float(xp.log(xp.maximum(p, 1e-30)).sum())


def _decay(progress: float, settings: TrainSettings) -> float:
    """η multiplier: 1 until the decay phase, then linear down to ``final_eta_fraction``."""
    begin = 1.0 - settings.decay_fraction
    if progress <= begin or settings.decay_fraction <= 0:
        return 1.0
    frac = min(1.0, (progress - begin) / settings.decay_fraction)
    return 1.0 - frac * (1.0 - settings.final_eta_fraction)


class _carried_state:
    """Within the block every recurrent layer carries its state from call to call,
    starting from the default state; afterwards the default behaviour is back."""

    def __init__(self, net):
        self.net = net

    def __enter__(self):
        reset_states(self.net)
        set_stateful(self.net, True)

    def __exit__(self, *exc):
        set_stateful(self.net, False)
        reset_states(self.net)


class _saved_states:
    """Keep the recurrent layers' carried states (and flags) across a block that resets them."""

    def __init__(self, net):
        self.layers = recurrent_layers(net)

    def __enter__(self):
        self.saved = [(layer.state, layer.stateful) for layer in self.layers]

    def __exit__(self, *exc):
        for layer, (state, stateful) in zip(self.layers, self.saved):
            layer.state, layer.stateful = state, stateful
