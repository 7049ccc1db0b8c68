"""One training step of a 1-layer character LSTM in nablanet and in PyTorch CPU.

The step: one-hot inputs (batch 32, 100 steps, 65 symbols) → LSTM (256 hidden units) →
a dense layer at every step → softmax with the log-likelihood cost (PyTorch's
CrossEntropyLoss on logits, mean over the 3 200 predictions) → backprop through time →
Adam. float32, the same random data for both, each figure the best of ``--repeats``
steps after ``--warmup`` untimed ones. Acceptance: nablanet ≤ 1.5× PyTorch's time.

    .venv/bin/python benchmarks/lstm_step.py [--repeats 10] [--threads 1 2] [--device gpu]

Both frameworks run at each thread count in ``--threads`` (threadpoolctl for NumPy's
BLAS, ``torch.set_num_threads`` for PyTorch); on a 2-core machine shared with other
jobs, 2 threads can be many times slower than 1 for both (threads waiting on each other).
``--device gpu`` runs nablanet on CuPy and PyTorch on CUDA (its cuDNN LSTM) instead,
synchronising the GPU before each step's clock stops; the thread counts do not apply.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from _common import environment_lines, verdict

BATCH, STEPS, SYMBOLS = 32, 100, 65
TARGET_VS_TORCH = 1.5
SEED = 0


def data(seed=SEED):
    """Random symbol streams: inputs x (one-hot) and the next symbols as targets."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, SYMBOLS, size=(BATCH, STEPS + 1))
    onehot = np.eye(SYMBOLS, dtype=np.float32)[idx]
    return onehot[:, :-1], onehot[:, 1:], idx[:, 1:]


def training_step(hidden: int, backend, clip: float | None = None):
    """One nablanet step on ``backend`` (no GPU synchronisation): the net, the data and Adam
    built once, untimed; ``clip`` limits the gradient norm as the char-lstm preset does."""
    from nablanet.costs import get_cost
    from nablanet.layers import LSTM, Softmax, TimeDistributedDense
    from nablanet.net import Sequential
    from nablanet.optimizers import Adam
    from nablanet.training.bptt import sequence_step

    x, y = (backend.asarray(a) for a in data()[:2])
    net = Sequential([LSTM(SYMBOLS, hidden), TimeDistributedDense(hidden, SYMBOLS), Softmax()])
    net.build((STEPS, SYMBOLS), backend, rng=SEED)
    cost, optimizer = get_cost("log-likelihood"), Adam(2e-3)
    return lambda: sequence_step(net, cost, optimizer, x, y, clip=clip)


def nablanet_step(hidden: int, device: str = "cpu"):
    """:func:`training_step`, timed as a whole: on a GPU it waits for the GPU to finish."""
    from nablanet import get_backend

    backend = get_backend(device)
    step = training_step(hidden, backend)
    if device == "cpu":
        return step
    sync = backend.xp.cuda.Device().synchronize

    def synced():
        step()
        sync()
    return synced


def torch_step(hidden: int, device: str = "cpu"):
    import torch

    x, _, idx = data()
    torch.manual_seed(SEED)
    where = "cuda" if device == "gpu" else "cpu"
    lstm = torch.nn.LSTM(SYMBOLS, hidden, batch_first=True).to(where)
    readout = torch.nn.Linear(hidden, SYMBOLS).to(where)
    params = list(lstm.parameters()) + list(readout.parameters())
    optimizer = torch.optim.Adam(params, lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x).to(where), torch.from_numpy(idx.reshape(-1)).to(where)

    def step():
        optimizer.zero_grad()
        h, _ = lstm(tx)
        loss = loss_fn(readout(h).reshape(-1, SYMBOLS), ty)
        loss.backward()
        optimizer.step()
        if where == "cuda":
            torch.cuda.synchronize()
    return step


def interleaved_best(steps: dict, repeats: int, warmup: int) -> dict:
    """Best time of each step, measured in alternation so a burst of load on a shared
    machine hits every framework alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    best = {name: float("inf") for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=10, help="best of this many steps (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="BLAS / PyTorch thread counts to compare at, the same for both "
                        "(default 1 2)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="gpu: nablanet on CuPy, PyTorch on CUDA")
    args = p.parse_args(argv)

    print(f"LSTM training step: batch {BATCH}, {STEPS} steps, {SYMBOLS} symbols one-hot, "
          f"{args.hidden} hidden, dense + softmax/log-likelihood, Adam, float32, "
          f"best of {args.repeats}, timed in alternation")
    for line in environment_lines():
        print("  " + line)
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch not installed: no comparison (pip install torch)")
    else:
        print(f"  PyTorch {torch.__version__}, CPU capability "
              f"{torch.backends.cpu.get_cpu_capability()}")
    from threadpoolctl import threadpool_limits

    from nablanet.layers.recurrent import LOOP_BLAS_THREADS
    print(f"  nablanet's time loop runs BLAS with {LOOP_BLAS_THREADS} thread(s) "
          "(nablanet.layers.recurrent.LOOP_BLAS_THREADS)")
    if args.device == "gpu":
        steps = {"nablanet": nablanet_step(args.hidden, "gpu")}
        if torch is not None:
            steps["PyTorch"] = torch_step(args.hidden, "gpu")
        best = interleaved_best(steps, args.repeats, args.warmup)
        print("  GPU: " + ", ".join(f"{name} {1000 * t:.1f} ms" for name, t in best.items())
              + (f"; ratio nablanet / PyTorch = {best['nablanet'] / best['PyTorch']:.2f}"
                 if torch is not None else ""))
        return 0
    verdicts = []
    for threads in args.threads:
        with threadpool_limits(threads, user_api="blas"):
            steps = {"nablanet": nablanet_step(args.hidden)}
            if torch is not None:
                torch.set_num_threads(threads)
                steps["PyTorch"] = torch_step(args.hidden)
            best = interleaved_best(steps, args.repeats, args.warmup)
        line = ", ".join(f"{name} {1000 * t:.1f} ms" for name, t in best.items())
        label = f"{threads} thread{'s' if threads > 1 else ''}"
        if torch is None:
            print(f"  {label}: {line}")
            verdicts.append(verdict(f"{label}: nablanet ≤ {TARGET_VS_TORCH}× PyTorch", None,
                                    "not measured"))
            continue
        ratio = best["nablanet"] / best["PyTorch"]
        print(f"  {label}: {line}; ratio nablanet / PyTorch = {ratio:.2f}", flush=True)
        verdicts.append(verdict(f"{label}: nablanet ≤ {TARGET_VS_TORCH}× PyTorch nn.LSTM",
                                ratio <= TARGET_VS_TORCH, f"{ratio:.2f}×"))
    print()
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
