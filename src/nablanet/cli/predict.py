"""``nablanet predict RUN --input FILE``: the class of every row of a file, with its top
probabilities.

FILE is ``.npy``/``.npz``/``.csv`` (one example per row, or images that flatten to
the model's input) or a ``.png`` digit (converted to MNIST's 28 × 28, white on
black). uint8 arrays are scaled to [0, 1] as the IDX loader scales MNIST.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from ..data import check_representable, load_array, scale_pixels, validate_dataset
from ..layers import Softmax
from .common import add_model_argument, info, load_run_model, positive_int


def add_parser(subparsers):
    p = subparsers.add_parser("predict", help="classify the rows of a .npy/.csv file or a .png",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    add_model_argument(p)
    p.add_argument("--input", required=True, metavar="FILE",
                   help=".npy, .npz or .csv rows of features, or a .png digit")
    p.add_argument("--top", type=positive_int, default=3, metavar="K",
                   help="how many classes to list per row (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    p.add_argument("--quiet", action="store_true", help="no 'model:' line on stderr")
    return p


def run(args) -> int:
    net, _, model_dir = load_run_model(args.run, args.model)
    x = inputs(args.input, int(np.prod(net.input_shape)), net.backend.dtype)
    info(args, f"model: {model_dir}")
    if x.size and float(x.max()) > 1.0:
        print(f"nablanet: warning: {args.input}: values up to {float(x.max()):g}; the model "
              "was trained on pixels in [0, 1]", file=sys.stderr)
    p = probabilities(net.predict(x), isinstance(net.output_activation, Softmax))
    k = min(args.top, p.shape[1])
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    for row, (classes, probs) in enumerate(zip(top, np.take_along_axis(p, top, axis=1))):
        if args.json:
            print(json.dumps({"row": row, "class": int(classes[0]),
                              "top": [[int(c), float(q)] for c, q in zip(classes, probs)]}))
        else:
            ranked = "  ".join(f"{c}: {q:.3f}" for c, q in zip(classes, probs))
            print(f"row {row}: class {classes[0]}   ({ranked})")
    return 0


def inputs(path, n_features: int, dtype) -> np.ndarray:
    """The rows of ``path`` as a checked (n, n_features) float array (one image → one row)
    whose values fit the model's float type ``dtype``."""
    x = load_array(path)
    if x.ndim <= 1 or (x.size == n_features and x.shape[-1] != n_features):
        x = x.reshape(1, -1)                           # a single example or a single image
    if x.dtype == np.uint8:
        x = scale_pixels(x)
    dummy = np.zeros(len(x), dtype=np.int64)           # no labels: checks x only
    x = validate_dataset(x, dummy, n_features=n_features, name=str(path)).x
    check_representable(x, dtype, str(path))
    return x


def probabilities(outputs: np.ndarray, softmax: bool) -> np.ndarray:
    """Softmax outputs as they are; other outputs clipped at 0 and normalised to sum 1."""
    if softmax:
        return outputs
    a = np.clip(outputs, 0, None)
    total = a.sum(axis=1, keepdims=True)
    return np.divide(a, total, out=np.full_like(a, 1 / a.shape[1]), where=total > 0)
