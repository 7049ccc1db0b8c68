"""One training epoch on a GPU in nablanet (CuPy) and PyTorch (CUDA), in the same run.

Three nets, each timed over the same data already on the GPU, float32:

* mlp: 784-100-10, sigmoid hidden units, softmax + log-likelihood (PyTorch:
  CrossEntropyLoss on logits), plain SGD η = 0.1, batches of 10, 128 and 1024;
* lenet5: the ``lenet5`` preset, SGD η = 0.01, batches of 64;
* inception: docs/examples/inception-cnn.toml (a convolution, an inception block of four
  branches, a residual block), Adam η = 0.001, batches of 32.

An epoch is 60 000 examples (``--examples`` times a slice and scales it). The two
frameworks take turns, one epoch each per round; each figure is the best of
``--repeats`` rounds, with the GPU synchronised before the clock stops. The ratio is
nablanet's time over PyTorch's (below 1: nablanet is faster). Data: random
MNIST-shaped arrays (speed does not depend on what is learned).

    python benchmarks/gpu_epoch.py [--repeats 3] [--examples 60000] [--nets mlp lenet5 inception]

Needs CuPy, PyTorch with CUDA and a GPU; says so and exits 1 otherwise. Small nets on a
GPU are bound by kernel launches (tens of microseconds of host time each), not by the
arithmetic: benchmarks/README.md has the measured figures.
"""
from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from _common import synthetic_classification
from lenet_epoch import torch_lenet5

SEED = 0
N_EXAMPLES = 60_000
INCEPTION = Path(__file__).resolve().parent.parent / "docs" / "examples" / "inception-cnn.toml"


# -- nablanet ----------------------------------------------------------------------------
def nablanet_net(name: str, backend):
    from nablanet.errors import ConfigError
    from nablanet.layers.base import layers_from_specs
    from nablanet.net import Sequential, mlp
    from nablanet.presets import lenet5

    if name == "mlp":
        return mlp([784, 100, 10], "sigmoid", "softmax", backend=backend, rng=SEED)
    if name == "lenet5":
        return lenet5(backend=backend, rng=SEED)
    specs = tomllib.loads(INCEPTION.read_text())["layers"]
    return Sequential(layers_from_specs(specs, str(INCEPTION), ConfigError)).build(
        (784,), backend, np.random.default_rng(SEED))


def nablanet_epoch(name: str, batch: int, data, backend, sync):
    """A fresh net and Trainer (untimed); the returned callable trains one epoch."""
    from nablanet.optimizers import SGD, Adam
    from nablanet.training import Trainer

    optimizer = {"mlp": lambda: SGD(0.1), "lenet5": lambda: SGD(0.01),
                 "inception": lambda: Adam(0.001)}[name]()
    trainer = Trainer(nablanet_net(name, backend), "log-likelihood", optimizer,
                      batch_size=batch, monitor=(), rng=SEED)

    def run():
        trainer.fit(data, trainer.next_epoch + 1)
        sync()
    return run


# -- PyTorch -----------------------------------------------------------------------------
def torch_net(torch, name: str):
    nn = torch.nn
    if name == "mlp":
        return nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 10))
    if name == "lenet5":                      # lenet_epoch.py's, on rows of 784 pixels
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), *torch_lenet5(torch))
    return torch_inception(torch)


def torch_inception(torch):
    """docs/examples/inception-cnn.toml in PyTorch."""
    nn = torch.nn

    class Inception(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 8, 5), nn.ReLU(),
                                      nn.MaxPool2d(2))
            self.branches = nn.ModuleList([
                nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU()),
                nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1),
                              nn.ReLU()),
                nn.Sequential(nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 5, padding=2),
                              nn.ReLU()),
                nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(8, 4, 1),
                              nn.ReLU())])
            self.residual = nn.Sequential(nn.Conv2d(24, 24, 3, padding=1), nn.ReLU(),
                                          nn.Conv2d(24, 24, 3, padding=1))
            self.head = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                      nn.Linear(24 * 6 * 6, 10))

        def forward(self, x):
            x = self.stem(x)
            x = torch.cat([branch(x) for branch in self.branches], dim=1)
            return self.head(x + self.residual(x))

    return Inception()


def torch_epoch(torch, name: str, batch: int, x, y):
    """The idiomatic loop: a shuffled permutation on the GPU, index each batch, step."""
    torch.manual_seed(SEED)
    model = torch_net(torch, name).cuda()
    optimizer = (torch.optim.Adam(model.parameters(), lr=0.001) if name == "inception" else
                 torch.optim.SGD(model.parameters(), lr=0.1 if name == "mlp" else 0.01))
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        order = torch.randperm(len(x), device="cuda")
        for i in range(0, len(x), batch):
            rows = order[i:i + batch]
            optimizer.zero_grad()
            loss_fn(model(x[rows]), y[rows]).backward()
            optimizer.step()
        torch.cuda.synchronize()
    return run


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--examples", type=int, default=N_EXAMPLES,
                   help="examples timed per epoch (scaled to 60 000)")
    p.add_argument("--nets", nargs="+", default=["mlp", "lenet5", "inception"],
                   choices=["mlp", "lenet5", "inception"])
    args = p.parse_args(argv)
    try:
        import cupy
        import torch
        from nablanet import get_backend
        backend = get_backend("gpu", "float32")
        if not torch.cuda.is_available():
            raise RuntimeError("PyTorch sees no CUDA device")
    except Exception as exc:                    # ImportError, BackendError, no device
        print(f"gpu_epoch needs CuPy, PyTorch with CUDA and a GPU: {exc}")
        return 1
    from nablanet.data import Dataset

    sync = cupy.cuda.Device().synchronize
    x, y = synthetic_classification(args.examples, 784, 10, SEED)
    data = Dataset(x, y, "synthetic")
    tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    scale = N_EXAMPLES / args.examples
    print(f"one epoch of {N_EXAMPLES:,} examples on {torch.cuda.get_device_name()}, float32, "
          f"best of {args.repeats}" + (f" (timed on {args.examples:,}, ×{scale:g})"
                                       if scale != 1 else ""))
    print(f"  CuPy {cupy.__version__}, PyTorch {torch.__version__}, NumPy {np.__version__}")
    batches = {"mlp": (10, 128, 1024), "lenet5": (64,), "inception": (32,)}
    warm = Dataset(x[:2048], y[:2048], "warm-up")
    rows = []
    for name in args.nets:
        for batch in batches[name]:
            nablanet_epoch(name, batch, warm, backend, sync)()        # compile the kernels
            torch_epoch(torch, name, batch, tx[:2048], ty[:2048])()
            ours, theirs = [], []
            for _ in range(max(1, args.repeats)):       # in turns: drift hits both alike
                ours.append(_timed(nablanet_epoch(name, batch, data, backend, sync)) * scale)
                theirs.append(_timed(torch_epoch(torch, name, batch, tx, ty)) * scale)
            rows.append((name, batch, min(ours), min(theirs)))
            print(f"  {name:9} batch {batch:5}: nablanet {min(ours):7.3f} s  PyTorch "
                  f"{min(theirs):7.3f} s  ratio {min(ours) / min(theirs):5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
