"""Data in: checked datasets, IDX/MNIST files, and user arrays (npy, npz, csv, png).

Everything returned here is a :class:`Dataset` (x: n × d float, y: int64 labels
or float targets) or a :class:`Splits` of them, checked once on the way in.
"""
from .arrays import load_array, load_digit_png, load_labelled_csv, load_train_test
from .dataset import Dataset, Splits, check_representable, hold_out_last, validate_dataset
from .idx import idx_paths, load_idx_dir, load_idx_pair, read_idx, scale_pixels, write_idx
from .mnist import (cache_dir, download_mnist, find_mnist_dir, load_mnist, mnist_available,
                    verify_sha256)

__all__ = [
    "Dataset", "Splits", "validate_dataset", "check_representable", "hold_out_last",
    "read_idx", "write_idx", "idx_paths", "load_idx_dir", "load_idx_pair", "scale_pixels",
    "load_mnist", "find_mnist_dir", "mnist_available", "download_mnist", "cache_dir",
    "verify_sha256",
    "load_array", "load_labelled_csv", "load_digit_png", "load_train_test",
]
