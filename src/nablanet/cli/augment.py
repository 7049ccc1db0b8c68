"""``nablanet augment``: look at data augmentation, or write an expanded training set.

``--show`` writes a PNG grid: each row an original training digit followed by its
distortions (``--kind elastic`` — Simard et al.'s, σ and α; ``affine`` — rotation,
translation, shear, scaling; ``shifts`` — Nielsen's four one-pixel shifts).
``--expand DIR`` writes the four IDX files of a training set with the distorted
copies added (``--copies``; shifts always add four), for ``nablanet train --dataset
DIR``: the held-out validation images stay the last ones and undistorted, and the
test set is copied unchanged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import Dataset
from ..data.augment import ONE_PIXEL_SHIFTS, distort, expand, expand_by_shifts, shift_images
from ..data.idx import IDX_FILES, write_idx
from ..errors import ConfigError
from .common import add_data_flags, info, non_negative_int

KINDS = ("elastic", "affine", "shifts")


def add_parser(subparsers):
    p = subparsers.add_parser("augment", help="show distorted digits (PNG) or write expanded data",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--kind", choices=KINDS, default="elastic", help="distortion (default elastic)")
    p.add_argument("--show", type=Path, metavar="PNG",
                   help="write a grid of originals and their distortions")
    p.add_argument("--expand", type=Path, metavar="DIR", help="write an expanded IDX data set here")
    p.add_argument("--examples", type=int, default=8, metavar="N",
                   help="--show: digits (default 8)")
    p.add_argument("--copies", type=int, default=4, metavar="K",
                   help="distortions per digit (default 4)")
    p.add_argument("--alpha", type=float, default=34.0, help="elastic: field scale α (default 34)")
    p.add_argument("--sigma", type=float, default=4.0, help="elastic: smoothing σ (default 4)")
    p.add_argument("--rotation", type=float, default=10.0, help="affine: ± degrees (default 10)")
    p.add_argument("--translation", type=float, default=2.0, help="affine: ± pixels (default 2)")
    p.add_argument("--shear", type=float, default=10.0, help="affine: ± degrees (default 10)")
    p.add_argument("--scale", type=float, nargs=2, default=(0.9, 1.1), metavar=("MIN", "MAX"),
                   help="affine: zoom range (default 0.9 1.1)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the distortions (default 0)")
    add_data_flags(p)
    p.add_argument("--quiet", action="store_true", help="no 'wrote' lines on stderr")
    return p


def options(args) -> dict:
    if args.kind == "elastic":
        return {"alpha": args.alpha, "sigma": args.sigma}
    if args.kind == "affine":
        return {"rotation": args.rotation, "translation": args.translation, "shear": args.shear,
                "scale": tuple(args.scale)}
    return {}


def run(args) -> int:
    from ..config import MNIST, load_splits

    if not args.show and not args.expand:
        raise ConfigError("nothing to do: give --show PNG and/or --expand DIR")
    if args.copies < 1 or args.examples < 1:
        raise ConfigError("--copies and --examples must be ≥ 1")
    validation_size = 10_000 if args.validation_size is None else args.validation_size
    train, validation, test = load_splits(args.dataset or MNIST, data_dir=args.data_dir,
                                          validation_size=validation_size)
    rng = np.random.default_rng(args.seed)
    if args.show:
        path = show(train.x[:args.examples], args.kind, args.copies, rng, args.show,
                    **options(args))
        info(args, f"wrote {path}")
    if args.expand:
        expanded = (expand_by_shifts(train) if args.kind == "shifts"
                    else expand(train, rng, args.copies, args.kind, **options(args)))
        write_dataset(args.expand, expanded, validation, test)
        info(args, f"wrote {len(expanded):,} training images"
                   + (f" + {len(validation):,} validation" if validation is not None else "")
                   + f" to {args.expand}")
    return 0


def show(x, kind: str, copies: int, rng, path, **opts) -> Path:
    """PNG grid: row i is digit i, then ``copies`` distortions of it."""
    from ..evaluation import _save
    from ..plots import _figure

    if kind == "shifts":
        columns = [shift_images(x, dy, dx) for dy, dx in ONE_PIXEL_SHIFTS]
    else:
        columns = [distort(x, rng, kind, **opts) for _ in range(copies)]
    figure = _figure()
    n, k = len(x), 1 + len(columns)
    figure.set_size_inches(k * 0.9, n * 0.9)
    for i in range(n):
        for j, images in enumerate([x, *columns]):
            axes = figure.add_subplot(n, k, i * k + j + 1)
            axes.imshow(np.asarray(images[i]).reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            axes.set_axis_off()
            if i == 0:
                axes.set_title("original" if j == 0 else kind, fontsize=7)
    return _save(figure, path)


def write_dataset(directory, train: Dataset, validation: Dataset | None, test: Dataset) -> None:
    """The four IDX files (uint8 pixels), validation appended at the end of the training file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = [train] + ([validation] if validation is not None else [])
    images = np.concatenate([d.x for d in parts])
    labels = np.concatenate([d.y for d in parts])

    def pixels(x):
        return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8).reshape(len(x), 28, 28)

    for name, array in zip(IDX_FILES, (pixels(images), labels.astype(np.uint8),
                                       pixels(test.x), test.y.astype(np.uint8))):
        write_idx(directory / f"{name}.gz", array)
