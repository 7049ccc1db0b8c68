"""One LeNet-5 training epoch in nablanet and in PyTorch (CPU), in the same run.

The network is the ``lenet5`` preset (6 and 16 maps of 5×5, 2×2 max-pooling, ReLU,
120-84-10 fully connected, softmax + log-likelihood; PyTorch: the same layers with
CrossEntropyLoss on logits), plain SGD η = 0.01, mini-batches of 64, float32, 60 000
synthetic MNIST-shaped images (the same arrays for both). The two frameworks take
turns, one epoch each per round, so load from other processes hits both alike; each
figure is the best of ``--repeats`` rounds. Then the peak memory of a LeNet-5
training run (MNIST when present, else synthetic data) in a child process.

    .venv/bin/python benchmarks/lenet_epoch.py [--repeats 2] [--examples 60000]
        [--blas-threads N|auto] [--threads N] [--no-peak-memory]

``--examples`` times a slice of the epoch and scales it to 60 000 (for quick checks).
Each framework runs as its own command line would: nablanet as ``nablanet train``
(``--blas-threads auto``: the trainer gives an epoch the idle cores when its GEMMs are
large, as LeNet-5's convolutions at batch 64 are, and one thread when they are small),
PyTorch with its default threads. ``--blas-threads N`` gives nablanet N BLAS threads
(0: the BLAS default); ``--threads N`` limits PyTorch and every BLAS library to N.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from _common import environment_lines, run_with_peak_rss, synthetic_classification, verdict
from nablanet.cli.common import thread_setting

ETA, BATCH, N_EXAMPLES, SEED = 0.01, 64, 60_000, 0
TARGET_VS_TORCH = 2.0
PEAK_LIMIT_MB = 800
MB = 1_000_000


def nablanet_epoch(data):
    """A fresh LeNet-5 and Trainer (untimed); the returned callable trains one epoch."""
    from nablanet.optimizers import SGD
    from nablanet.presets import lenet5
    from nablanet.training import Trainer

    trainer = Trainer(lenet5(rng=SEED), "log-likelihood", SGD(ETA), batch_size=BATCH,
                      monitor=(), rng=SEED)
    return lambda: trainer.fit(data, 1)


def torch_lenet5(torch):
    """The preset's layers in PyTorch (pooling before ReLU, as the preset orders them)."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def torch_epoch(torch, x, y):
    """The idiomatic PyTorch loop: shuffled permutation, index each mini-batch, step."""
    torch.manual_seed(SEED)
    model = torch_lenet5(torch)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=ETA)
    generator = torch.Generator().manual_seed(SEED)

    def run():
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), BATCH):
            batch = order[i:i + BATCH]
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return run


def timed(prepare, limit=None) -> float:
    """Seconds for one run of ``prepare()``'s callable, under the thread ``limit`` context."""
    import contextlib
    run = prepare()
    with limit() if limit else contextlib.nullcontext():
        start = time.perf_counter()
        run()
        return time.perf_counter() - start


def peak_memory(examples: int) -> tuple[int, str]:
    """Peak RSS (bytes) of a child process training LeNet-5 for one epoch, and its last line."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--examples", str(examples)]
    status, peak, output = run_with_peak_rss(cmd)
    if status != 0:
        raise RuntimeError(f"the LeNet-5 run exited with status {status}:\n{output[-2000:]}")
    return peak, (output.strip().splitlines() or [""])[-1]


def child(examples: int) -> None:
    """The measured run: MNIST (50k train, validation and test monitored) or synthetic data."""
    from nablanet.data import Dataset
    from nablanet.data.mnist import mnist_available
    from nablanet.optimizers import SGD
    from nablanet.presets import lenet5
    from nablanet.training import Trainer

    if mnist_available():
        from nablanet.data import load_mnist
        train, validation, _ = load_mnist(download=False)
        what = "MNIST"
    else:
        x, y = synthetic_classification(examples + 10_000, 784, 10, SEED)
        train = Dataset(x[:examples], y[:examples], "train")
        validation = Dataset(x[examples:], y[examples:], "validation")
        what = "synthetic"
    trainer = Trainer(lenet5(rng=SEED), "log-likelihood", SGD(ETA), batch_size=BATCH, rng=SEED)
    row = trainer.fit(train, 1, validation).rows[-1]
    print(f"{what}: 1 epoch of {len(train):,} in {row['seconds']:.1f}s, "
          f"validation accuracy {row['validation_accuracy']:.4f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--examples", type=int, default=N_EXAMPLES,
                   help="examples timed per epoch (scaled to 60 000)")
    p.add_argument("--threads", type=int, help="threads for PyTorch and every BLAS")
    p.add_argument("--blas-threads", type=thread_setting, default="auto",
                   help="BLAS threads for nablanet (default auto, as nablanet train; "
                        "0: BLAS default)")
    p.add_argument("--no-peak-memory", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.examples)
        return 0
    try:
        import torch
    except ImportError:
        torch = None
    import scipy.linalg.blas  # noqa: F401  (nablanet's axpy: load it so limits reach it too)
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)

    from nablanet.cli.common import blas_threads
    from nablanet.data import Dataset
    ours_limit = None if args.threads else (lambda: blas_threads(args.blas_threads))
    x, y = synthetic_classification(args.examples, 784, 10, SEED)
    data = Dataset(x, y, "synthetic")
    scale = N_EXAMPLES / args.examples
    print(f"LeNet-5 epoch: batch {BATCH}, SGD η={ETA}, float32, {args.examples:,} synthetic "
          f"images{f' (scaled ×{scale:g})' if scale != 1 else ''}, best of {args.repeats}")
    for line in environment_lines():
        print("  " + line)
    if torch is not None:
        print(f"  PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
        tx, ty = torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(y)
    if ours_limit:
        print(f"  nablanet: --blas-threads {args.blas_threads}")

    warm = Dataset(x[:1024], y[:1024], "warm-up")
    timed(lambda: nablanet_epoch(warm), ours_limit)
    if torch is not None:
        torch_epoch(torch, tx[:1024], ty[:1024])()
    ours, theirs = [], []
    for r in range(max(1, args.repeats)):
        ours.append(timed(lambda: nablanet_epoch(data), ours_limit) * scale)
        if torch is not None:
            theirs.append(timed(lambda: torch_epoch(torch, tx, ty)) * scale)
        print(f"  round {r + 1}: nablanet {ours[-1]:.2f}s"
              + (f", PyTorch {theirs[-1]:.2f}s" if theirs else ""), flush=True)

    print()
    mine = min(ours)
    print(f"nablanet {mine:.2f} s per epoch" + (f", PyTorch {min(theirs):.2f} s, ratio "
                                                f"{mine / min(theirs):.2f}" if theirs else ""))
    lines = [verdict(f"LeNet-5 epoch ≤ {TARGET_VS_TORCH:g}× PyTorch CPU", None, "no PyTorch")
             if not theirs else
             verdict(f"LeNet-5 epoch ≤ {TARGET_VS_TORCH:g}× PyTorch CPU",
                     mine / min(theirs) <= TARGET_VS_TORCH, f"{mine / min(theirs):.2f}×")]
    if not args.no_peak_memory:
        peak, last = peak_memory(args.examples)
        print(f"peak memory: {peak / MB:.0f} MB  [{last}]")
        lines.append(verdict(f"peak memory of LeNet-5 training < {PEAK_LIMIT_MB} MB",
                             peak < PEAK_LIMIT_MB * MB, f"{peak / MB:.0f} MB"))
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
