"""Fused SGD steps through NumPy's own OpenBLAS (its CBLAS symbols, by ctypes) so that one
pool, NumPy's, holds the threads and the forward products stay plain ``x @ W``; against
the shipped plan (SciPy's pool holds the threads, NumPy's is held to one).

Only for NumPy wheels that bundle scipy-openblas64 (symbols ``scipy_cblas_?gemm64_``,
64-bit integers); float32 only, as in the benchmark.
"""
import ctypes
import sys
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np

import _paired
import nablanet.training.fused as fused
from nablanet.utils.blas import library_count, pool_threads, thread_count

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def numpy_cblas():
    libs = Path(np.__file__).resolve().parent.with_name("numpy.libs")
    lib = ctypes.CDLL(str(next(libs.glob("libscipy_openblas64_*.so"))))
    i64, f32, ptr, enum = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p, ctypes.c_int
    gemm, gemv = lib.scipy_cblas_sgemm64_, lib.scipy_cblas_sgemv64_
    gemm.argtypes = [enum, enum, enum, i64, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
    gemv.argtypes = [enum, enum, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
    gemm.restype = gemv.restype = None
    return gemm, gemv


def patch():
    gemm, gemv = numpy_cblas()

    def plan(net, targets):
        if thread_count() == 1 or library_count() <= 1:
            return nullcontext(), False
        return pool_threads(thread_count(), 1), False        # NumPy's pool keeps the threads

    def matmul(self, p, a, b):            # p ← βp + α aᵀ… with a = xᵀ (F-ordered), b = δ
        gemm(ROW_MAJOR, TRANS, NO_TRANS, p.shape[0], p.shape[1], b.shape[0], self.alpha,
             a.ctypes.data, a.shape[0], b.ctypes.data, b.shape[1], self.beta, p.ctypes.data,
             p.shape[1])

    def row_sum(self, p, d):
        if len(self._ones) < len(d):
            self._ones = np.ones(len(d), dtype=self._ones.dtype)
        gemv(ROW_MAJOR, TRANS, d.shape[0], d.shape[1], self.alpha, d.ctypes.data, d.shape[1],
             self._ones.ctypes.data, 1, self.beta, p.ctypes.data, 1)

    return (mock.patch.object(fused, "thread_plan", plan),
            mock.patch.multiple(fused.FusedSGD, matmul=matmul, row_sum=row_sum))


def main(batch_sizes):
    _paired.shipped_against_patched("fused steps on NumPy's OpenBLAS", batch_sizes, *patch(),
                                    rounds=30)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [128, 1024])
