"""The mini-batch gather of a 50 000-example MNIST epoch: float32 rows (shipped) against
uint8 rows decoded to float32 per batch (same values: x / 255 in float32)."""
import sys
import time

import numpy as np

from nablanet.data.idx import idx_paths, read_idx, scale_pixels
from nablanet.data.mnist import find_mnist_dir


def main(batch_sizes):
    pixels = read_idx(idx_paths(find_mnist_dir())["train-images-idx3-ubyte"]).reshape(-1, 784)[:50_000]
    as_bytes, as_floats, f255 = np.ascontiguousarray(pixels), scale_pixels(pixels), np.float32(255)
    rng = np.random.default_rng(0)

    def epoch(m, decode):
        order = rng.permutation(len(as_bytes))
        raw, out = np.empty((m, 784), np.uint8), np.empty((m, 784), np.float32)
        start = time.perf_counter()
        for i in range(0, len(order) - m + 1, m):
            rows = order[i:i + m]
            if decode:
                as_bytes.take(rows, axis=0, out=raw, mode="clip")
                np.copyto(out, raw)
                np.divide(out, f255, out=out)
            else:
                as_floats.take(rows, axis=0)
        return time.perf_counter() - start
    rows = rng.permutation(len(as_bytes))[:128]
    decoded = as_bytes.take(rows, axis=0).astype(np.float32) / f255
    assert np.array_equal(decoded, as_floats.take(rows, axis=0))
    for m in batch_sizes:
        f32 = min(epoch(m, False) for _ in range(7))
        u8 = min(epoch(m, True) for _ in range(7))
        print(f"batch {m}: float32 rows {f32 * 1e3:.1f} ms, uint8 rows + decode {u8 * 1e3:.1f} ms "
              "per 50 000 examples")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 128, 1024])
