"""GFLOP/s of the 784-100-10 step's two large GEMMs (forward x W, weight gradient xᵀδ) at a
batch size, on NumPy's OpenBLAS at 1 and 2 threads and on PyTorch's BLAS, beside the
2048² ceiling at the same thread counts."""
import sys

import numpy as np

from _paired import best_us
from nablanet.utils.blas import limited


def main(m):
    rng = np.random.default_rng(0)
    x, w = rng.random((m, 784), dtype=np.float32), rng.random((784, 100), dtype=np.float32)
    d, a = rng.random((m, 100), dtype=np.float32), rng.random((2048, 2048), dtype=np.float32)
    out, grad, flops = np.empty((m, 100), np.float32), np.empty((784, 100), np.float32), 2 * m * 784 * 100
    for threads in (1, 2):
        with limited(threads):
            ceiling = 2 * 2048 ** 3 / best_us(lambda: a @ a, calls=3, rounds=5) / 1e3
            fwd = best_us(lambda: np.matmul(x, w, out=out))
            dw = best_us(lambda: np.matmul(x.T, d, out=grad))
            print(f"NumPy {threads} thread(s): ceiling {ceiling:.0f} GFLOP/s; forward {fwd:.0f} µs "
                  f"= {flops / fwd / 1e3:.0f} GFLOP/s ({flops / fwd / 1e3 / ceiling:.0%}); "
                  f"weight gradient {dw:.0f} µs = {flops / dw / 1e3:.0f} GFLOP/s "
                  f"({flops / dw / 1e3 / ceiling:.0%})")
    try:
        import torch
    except ImportError:
        return
    xt, wt, dt = map(torch.from_numpy, (x, w, d))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fwd, dw = best_us(lambda: torch.mm(xt, wt)), best_us(lambda: torch.mm(xt.T, dt))
        print(f"PyTorch {threads} thread(s): forward {flops / fwd / 1e3:.0f} GFLOP/s, "
              f"weight gradient {flops / dw / 1e3:.0f} GFLOP/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
