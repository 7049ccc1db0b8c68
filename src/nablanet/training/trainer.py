"""The training loop: shuffled mini-batches, backprop, an optimiser step, callbacks.

    for epoch: order = rng.permutation(n)
        for batch in chunks(order, m):
            a, caches = net.forward(x[batch], train=True)
            δᴸ        = output_delta(cost, σ, a, y[batch])      # BP1
            net.backward(δᴸ, caches)                             # BP2–BP4
            penalties add λ-terms; optimizer.step(); constraints
        callbacks.on_epoch_end(epoch, metrics)                   # may stop, change η, save
"""
from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

import numpy as np

from ..backend import make_rng, to_host, xp_of
from ..costs import Cost, get_cost, output_delta
from ..data.dataset import check_dataset
from ..errors import ConfigError, DataError
from ..layers import Linear
from ..net import Sequential
from ..optimizers import Optimizer
from ..utils.allocator import retain_freed_memory
from ..utils.blas import limited, thread_count
from ..utils.state import history_rows, whole_number
from .batches import minibatches
from .callbacks import Callback, DivergenceGuard
from .fused import armed
from .history import History
from .threads import check_setting, epoch_thread_limit

if TYPE_CHECKING:
    from ..data.dataset import Dataset

MONITOR_ALL = ("train_cost", "train_accuracy", "validation_cost", "validation_accuracy")


class Trainer:
    """Trains a :class:`Sequential` net with a cost and an optimiser.

    ``monitor`` picks which of ``train_cost``, ``train_accuracy``, ``validation_cost``
    and ``validation_accuracy`` are computed after each epoch (network2's four flags).
    ``penalties`` (L1, L2) add their gradient before each step; ``constraints``
    (max-norm) act on the weights after it. ``blas_threads`` limits the BLAS during the
    training steps: ``"auto"`` picks one thread for small GEMMs and the idle cores for
    large ones (:mod:`nablanet.training.threads`), a number fixes it, None leaves it.
    """

    def __init__(self, net: Sequential, cost: Cost | str, optimizer: Optimizer, *,
                 batch_size: int = 10, penalties=(), constraints=(), callbacks=(),
                 monitor=MONITOR_ALL, rng=None, eval_chunk: int = 2000,
                 blas_threads: int | str | None = "auto"):
        self.batch_size = whole_number(batch_size, "batch size", 1, error=DataError)
        if not isinstance(net, Sequential):
            raise ConfigError(f"Trainer needs a Sequential net (mlp(...) or Sequential([...])), "
                              f"got {type(net).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise ConfigError(f"optimizer must be an Optimizer such as SGD(eta=0.1), got "
                              f"{optimizer!r} (get_optimizer(name, eta) builds one by name)")
        optimizer.attach(net)
        self.net, self.cost, self.optimizer = net, get_cost(cost), optimizer
        self.penalties = _list_of(penalties, "penalties", "add_gradient", "L2(5.0)")
        self.constraints = _list_of(constraints, "constraints", "apply", "MaxNorm(3.0)")
        callbacks = _list_of(callbacks, "callbacks", "on_epoch_end", "EarlyStopping(10)")
        if not any(isinstance(c, DivergenceGuard) for c in callbacks):
            callbacks.append(DivergenceGuard())
        self.callbacks: list[Callback] = sorted(callbacks, key=lambda c: c.priority)
        if isinstance(monitor, str):       # a tuple of one name, not its letters
            raise ConfigError(f"monitor must be a sequence of names such as "
                              f"({monitor!r},), got the string {monitor!r}")
        self.monitor = tuple(monitor)
        unknown = [k for k in self.monitor if k not in MONITOR_ALL]
        if unknown:
            raise ConfigError(f"cannot monitor {unknown[0]!r}; "
                              f"choose from {', '.join(MONITOR_ALL)}")
        self.rng = make_rng(rng)
        self.eval_chunk = whole_number(eval_chunk, "eval_chunk", 1, error=ConfigError)
        self.blas_threads = check_setting(blas_threads)
        #: the BLAS threads the training steps ran with (decided at the first ``fit``, kept
        #: in checkpoints: a GEMM's last bits can depend on it, so a resume reuses it)
        self.threads_used: int | None = None
        self.history = History()
        #: True while every parameter's SGD step happens inside its gradient's BLAS call
        #: (training/fused.py): the steps then skip the optimiser's empty pass
        self._steps_fused = False
        self.status = "running"
        self.message = ""
        self.restored_epoch: int | None = None
        self.next_epoch = 0
        self.n_train = 0
        # The cost meets the output activation here; a net without one is linear.
        self._output = net.output_activation or Linear()
        self._start = len(net.layers) - (net.output_activation is not None)

    # -- control used by callbacks ---------------------------------------------------
    def stop(self, status: str, message: str = "") -> None:
        """End the run after this epoch's callbacks. The first reason stands: the divergence
        guard runs first, and early stopping or a schedule running out in that same epoch
        must not relabel a diverged run (the checkpoint would then save its weights)."""
        if self.status == "running":
            self.status, self.message = status, message

    @property
    def stopping(self) -> bool:
        return self.status != "running"

    def param_arrays(self) -> list:
        return [layer.params[name] for layer, name in self.net.parameters()]

    def copy_params(self) -> list[np.ndarray]:
        return [to_host(p).copy() for p in self.param_arrays()]

    def set_params(self, arrays) -> None:
        for p, value in zip(self.param_arrays(), arrays):
            p[...] = xp_of(p).asarray(value)

    # -- the loop ----------------------------------------------------------------------
    def fit(self, train: Dataset, epochs: int, validation: Dataset | None = None) -> History:
        """Train for ``epochs`` epochs (counting from ``self.next_epoch`` on a resume)."""
        # range(-1) or range(0) would train nothing and report the run completed
        epochs = whole_number(epochs, "epochs", 1, error=ConfigError)
        check_dataset(train, "train")
        if validation is not None:
            check_dataset(validation, "validation")
        backend = self.net.backend
        x = self.net.device_input(train.x)           # no copy when already float32 on CPU
        targets = self.cost.targets(train.y, self.net.output_shape[-1], backend)
        self.n_train = n = len(train)
        if n == 0:
            raise DataError("the training set is empty")
        self.status = "running"
        retain_freed_memory()            # no page faults re-mapping each step's arrays
        if self.threads_used is None or self.blas_threads != "auto":
            threads = epoch_thread_limit(self.blas_threads, self.net, self.batch_size)
            self.threads_used = threads if threads is not None else thread_count()
        threads = self.threads_used
        for cb in self.callbacks:
            cb.on_train_begin(self)
        try:
            for epoch in range(self.next_epoch, epochs):
                with self.blas_plan(threads):
                    start = time.perf_counter()
                    self._run_epoch(x, targets, n)
                    seconds = time.perf_counter() - start
                metrics = {"epoch": epoch, "seconds": seconds, "eta": self.optimizer.eta}
                # On several threads the monitoring stays on the steps' plan: a BLAS pool
                # the steps leave alone, used for evaluation, keeps a worker spinning ~0.1 s
                # after its last GEMM, which took a core from the next epoch (784-100-10,
                # all four monitors, batch 128: 0.254 → 0.157 s an epoch, evaluation
                # included). On one thread evaluation keeps the library's threads (batch
                # 10: 40 ms instead of 68 ms) and a spinning worker takes an unused core.
                with self.blas_plan(threads) if threads > 1 else nullcontext():
                    metrics.update(self._monitor(train, validation))
                self.next_epoch = epoch + 1
                # Recorded before the callbacks run, so a checkpoint's history includes it.
                self.history.append(metrics)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, epoch, metrics)
                if self.stopping:
                    break
            if self.status == "running":
                self.status = "completed"
        except KeyboardInterrupt:
            # The last completed epoch is already checkpointed; --resume continues it.
            # an interrupt or an error outranks any stop a callback asked for
            self.status = "interrupted"
            self.message = f"interrupted during epoch {self.next_epoch + 1}"
            raise
        except Exception as exc:
            self.status, self.message = "failed", str(exc)
            raise
        finally:
            for cb in self.callbacks:
                cb.on_train_end(self)
        return self.history

    @contextmanager
    def blas_plan(self, threads: int):
        """The BLAS thread limit the steps run under, and plain SGD steps taken inside
        the GEMMs where that changes nothing but speed (training/fused.py). Public for
        diagnostics: benchmarks/mlp_stages.py times a step's stages inside it."""
        with limited(threads), armed(self) as every_step_fused:
            self._steps_fused = every_step_fused
            try:
                yield
            finally:
                self._steps_fused = False

    def _run_epoch(self, x, targets, n: int) -> None:
        # Dropout draws from self.rng (CPU) or from a GPU generator seeded from it here, at
        # each epoch, so a run resumed from a checkpoint draws the same masks on either.
        self.net.set_rng(self.rng)
        order = self.rng.permutation(n)
        if x.__class__ is not np.ndarray:            # data on a GPU: index on the device
            order = xp_of(x).asarray(order)
        for xb, yb in minibatches(x, targets, order, self.batch_size):
            self.train_step(xb, yb)

    def train_step(self, xb, yb) -> None:
        """One mini-batch: forward, δᴸ, backward, penalties, update, constraints."""
        net = self.net
        a, caches = net.forward(xb, train=True)
        delta = output_delta(self.cost, self._output, a, yb, caches[-1], len(xb))
        net.backward(delta, caches, start=self._start)
        if self._steps_fused:
            # every parameter has taken its step (L2 folded in), its gradient left None:
            # the penalties, the optimiser and zero_grads would pass over them for nothing
            # (1–2.5 % of a 784-100-10 epoch at batch 10)
            self.optimizer.t += 1
        else:
            for penalty in self.penalties:
                penalty.add_gradient(net, self.n_train)
            self.optimizer.step(net)
            net.zero_grads()
        for constraint in self.constraints:
            constraint.apply(net)

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, data: Dataset) -> tuple[float, float | None]:
        """(mean cost including penalties, accuracy or None for regression targets)."""
        check_dataset(data, "data")
        backend, net = self.net.backend, self.net
        total, correct = 0.0, 0
        classify = data.y.ndim == 1
        for i in range(0, len(data), self.eval_chunk):
            xb = net.device_input(data.x[i:i + self.eval_chunk])
            yb = data.y[i:i + self.eval_chunk]
            a, _ = net.forward(xb)
            total += self.cost.value(a, self.cost.targets(yb, a.shape[-1], backend))
            if classify:
                correct += int((to_host(a.argmax(axis=1)) == yb).sum())
        cost = total / len(data)
        cost += sum(p.value(net, self.n_train or len(data)) for p in self.penalties)
        return cost, (correct / len(data) if classify else None)

    def _monitor(self, train: Dataset, validation: Dataset | None) -> dict:
        out = {}
        for prefix, data in (("train", train), ("validation", validation)):
            wanted = [k for k in (f"{prefix}_cost", f"{prefix}_accuracy") if k in self.monitor]
            if data is None or not wanted:
                continue
            cost, accuracy = self.evaluate(data)
            if f"{prefix}_cost" in wanted:
                out[f"{prefix}_cost"] = cost
            if accuracy is not None and f"{prefix}_accuracy" in wanted:
                out[f"{prefix}_accuracy"] = accuracy
        return out

    # -- checkpointing ---------------------------------------------------------------------
    def state_dict(self, epoch: int) -> tuple[dict, dict]:
        """(JSON-able scalars, host arrays) from which :meth:`load_state_dict` resumes."""
        opt_scalars, opt_arrays = self.optimizer.state_dict()
        scalars = {"next_epoch": epoch + 1, "rng": self.rng.bit_generator.state,
                   "optimizer": {**self.optimizer.config(), **opt_scalars},
                   "callbacks": [cb.state_dict() for cb in self.callbacks],
                   "history": self.history.rows + [], "status": self.status,
                   "blas_threads": self.threads_used}
        arrays = {f"optimizer/{k}": v for k, v in opt_arrays.items()}
        for i, cb in enumerate(self.callbacks):
            arrays.update({f"callback{i}/{k}": v for k, v in cb.state_arrays().items()})
        return scalars, arrays

    def load_state_dict(self, scalars: dict, arrays: dict) -> None:
        self.next_epoch = whole_number(scalars["next_epoch"], "next_epoch")
        self.rng.bit_generator.state = scalars["rng"]
        opt = {k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}
        self.optimizer.load_state_dict(scalars["optimizer"], opt, self.net.backend,
                                       shapes=[p.shape for p in self.param_arrays()])
        for i, (cb, state) in enumerate(zip(self.callbacks, scalars["callbacks"])):
            cb.load_state_dict(state)
            prefix = f"callback{i}/"
            cb.load_state_arrays({k[len(prefix):]: v for k, v in arrays.items()
                                  if k.startswith(prefix)}, self)
        threads = scalars.get("blas_threads")
        rows = history_rows(scalars["history"])
        if [row["epoch"] for row in rows] != list(range(self.next_epoch)):
            # one row per epoch done, in order: the summary and metrics.jsonl are made of them
            raise ValueError(f"'history' must hold epochs 0 to {self.next_epoch - 1} in order, "
                             f"got {[row['epoch'] for row in rows]}")
        self.history = History(rows)
        self.threads_used = None if threads is None else whole_number(threads, "blas_threads", 1)


def _list_of(items, what: str, method: str, example: str) -> list:
    """``items`` as a list of objects with ``method``: one passed without a list, or a list
    of anything else, is a ConfigError here rather than an AttributeError at the first step."""
    if hasattr(items, method) or not hasattr(items, "__iter__"):
        raise ConfigError(f"{what} must be a list such as [{example}], got {items!r}")
    items = list(items)
    for item in items:
        if not hasattr(item, method):
            raise ConfigError(f"{what} must hold objects such as {example}, got {item!r}")
    return items


def fit(net, train: Dataset, *, cost="cross-entropy", optimizer: Optimizer, epochs: int,
        batch_size: int = 10, validation: Dataset | None = None, **kwargs) -> History:
    """Train ``net`` in one call; see :class:`Trainer` for the keyword arguments."""
    trainer = Trainer(net, cost, optimizer, batch_size=batch_size, **kwargs)
    return trainer.fit(train, epochs, validation)
