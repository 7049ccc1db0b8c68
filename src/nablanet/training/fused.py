"""Plain SGD folded into the GEMM (and GEMV) that computes a dense layer's gradient.

SGD with weight decay updates a dense layer's weights as (chapter 3)

    W ← (1 − ηλ/n) W − η ∂C₀/∂W,        ∂C₀/∂W = xᵀδ.

Done apart, the GEMM writes xᵀδ to a buffer and the update reads it back: two more
passes over an n_in × n_out array, which at mini-batch size 10 cost about as much as the
GEMM itself. BLAS's GEMM computes C ← α·AB + β·C in one pass, so with C = W, α = −η and
β = 1 − ηλ/n the update happens inside the product and the gradient never exists as an
array. NumPy's ``matmul`` has no β, so the call goes to SciPy's BLAS. Fused, a
784-100-10 epoch at batch 10 took 0.32 s instead of 0.41 s here (batch 128: no change,
0.15 s; there the GEMMs dominate). A bias's gradient Σ_rows δ = δᵀ1 is a GEMV, and
``b ← βb − η·δᵀ1`` is one call where the sum, the scaled copy and the add were three.

:func:`armed` sets this up for the layers that allow it (``fusable`` names a parameter
whose gradient comes from a single ``accumulate_matmul`` or ``accumulate_row_sum`` per
backward pass) when it changes nothing but speed: NumPy arrays, the optimiser exactly
:class:`SGD`, no penalty but L2 (folded into β), every layer used once. SciPy's BLAS is
often a second OpenBLAS with its own thread pool, and two pools whose spinning workers
fight over the cores stalled training 10–40×, so :func:`thread_plan` decides where the
threads go (more than one: SciPy's pool gets them and NumPy's is held to one). The fused
update may round differently from the two-step one (with weight decay it does), so a
run's last bits depend on whether it was armed; the same seed still gives the same bits.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import numpy as np

from ..optimizers import SGD
from ..regularizers import L2
from ..utils.blas import library_count, pool_threads, separate_pools, thread_count


def gemm_update(p, a, b, alpha: float, beta: float, gemm=None) -> None:
    """p ← β·p + α·(a @ b) in place, in one BLAS GEMM call (p C- or F-contiguous);
    ``gemm``, SciPy's ?gemm for p's dtype, saves looking it up at every call."""
    if gemm is None:
        from scipy.linalg.blas import get_blas_funcs
        gemm = get_blas_funcs("gemm", dtype=p.dtype)
    if p.flags.f_contiguous:
        target, left, right = p, a, b
    else:                                   # C-contiguous p: update pᵀ = βpᵀ + α bᵀaᵀ
        target, left, right = p.T, b.T, a.T
    (left, trans_a), (right, trans_b) = _fortran(left), _fortran(right)
    out = gemm(alpha, left, right, beta=beta, c=target, trans_a=trans_a, trans_b=trans_b,
               overwrite_c=1)
    if out is not target:                   # never expected for a contiguous p; stay correct
        target[...] = out


def _fortran(m):
    """(array, trans) with the array Fortran-ordered and op(array) == m, copying only if
    ``m`` is neither C- nor F-contiguous."""
    if m.flags.f_contiguous:
        return m, 0
    if m.flags.c_contiguous:
        return m.T, 1
    return np.asfortranarray(m), 0


def gemv_update(p, d, alpha: float, beta: float, gemv=None, ones=None) -> None:
    """p ← β·p + α·Σ_rows d (= β·p + α·dᵀ1) in place, in one BLAS GEMV call; p a contiguous
    vector. ``gemv`` is SciPy's ?gemv for p's dtype; ``ones`` a vector of at least len(d)
    ones of that dtype (both looked up or made when not given)."""
    if gemv is None:
        from scipy.linalg.blas import get_blas_funcs
        gemv = get_blas_funcs("gemv", dtype=p.dtype)
    if ones is None:
        ones = np.ones(len(d), dtype=p.dtype)
    matrix, trans = _fortran(d.T)
    out = gemv(alpha, matrix, ones[:len(d)], beta=beta, y=p, trans=trans, overwrite_y=1)
    if out is not p:                        # never expected for a contiguous p; stay correct
        p[...] = out


class FusedSGD:
    """The SGD step θ ← (1 − ηλ/n)θ − η·G of one parameter, done inside the BLAS call that
    computes its gradient G (``matmul``: G = a @ b; ``row_sum``: G = Σ_rows d).

    η is read when the step is made: :func:`armed` makes new steps for every epoch, and
    schedules change η only between epochs. The layouts a dense layer passes (θ
    C-contiguous, a = xᵀ, b = δ C-contiguous) go straight to BLAS, arguments passed by
    position: at mini-batch size 10 every check costs a visible share of the step, and
    SciPy's wrappers parse keywords slowly (a 10 × 10 ?gemv: 0.67 µs by keyword, 0.21 µs
    by position).
    """

    def __init__(self, eta: float, decay: float, n: int, dtype, products: bool = False):
        from scipy.linalg.blas import get_blas_funcs
        self.alpha, self.beta = -eta, 1.0 - eta * decay / n
        #: the layer's forward products go through :meth:`product` (SciPy's BLAS holds
        #: the threads while armed; NumPy's is at one)
        self.products = products
        self._gemm, self._gemv = get_blas_funcs(("gemm", "gemv"), dtype=dtype)
        self._ones = np.ones(0, dtype=dtype)

    def product(self, a, w):
        """a @ w on SciPy's BLAS."""
        if a.flags.c_contiguous and w.flags.c_contiguous and a.dtype == w.dtype:
            out = np.empty((a.shape[0], w.shape[1]), dtype=w.dtype)
            # outᵀ = wᵀaᵀ, all Fortran-ordered as they lie: (α, A, B, β, C, ta, tb, overwrite)
            self._gemm(1.0, w.T, a.T, 0.0, out.T, 0, 0, 1)
            return out
        return a @ w

    def matmul(self, p, a, b) -> None:
        if p.flags.c_contiguous and a.flags.f_contiguous and b.flags.c_contiguous:
            # pᵀ ← βpᵀ + α·bᵀaᵀ with every operand Fortran-ordered as it lies; arguments
            # by position: (α, A, B, β, C, trans_a, trans_b, overwrite_c)
            self._gemm(self.alpha, b.T, a, self.beta, p.T, 0, 1, 1)
        else:
            gemm_update(p, a, b, self.alpha, self.beta, self._gemm)

    def row_sum(self, p, d) -> None:
        if len(self._ones) < len(d):
            self._ones = np.ones(len(d), dtype=self._ones.dtype)
        if d.flags.c_contiguous:
            # (α, A, x, β, y, offx, incx, offy, incy, trans, overwrite_y)
            self._gemv(self.alpha, d.T, self._ones[:len(d)], self.beta, p, 0, 1, 0, 1, 0, 1)
        else:
            gemv_update(p, d, self.alpha, self.beta, self._gemv, self._ones)


def fusable_parameters(trainer) -> list[tuple]:
    """(layer, name) pairs whose SGD step can happen inside their gradient's BLAS call; [] when
    anything in the trainer would notice the difference."""
    net, optimizer = trainer.net, trainer.optimizer
    if (type(optimizer) is not SGD or net.backend.xp is not np
            or any(type(p) is not L2 for p in trainer.penalties)):
        return []
    layers = net.layers
    if len({id(layer) for layer in layers}) != len(layers):      # a layer used twice
        return []
    return [(layer, name) for layer, name in net.parameters()
            if name in layer.fusable
            and layer.params[name].dtype in (np.float32, np.float64)
            and (layer.params[name].flags.c_contiguous or layer.params[name].flags.f_contiguous)]


def thread_plan(net, targets):
    """(context, products) for fusing at the BLAS's current thread count, or None where
    fusing would cost threads.

    On one thread (every pool at one) or with one library for NumPy and SciPy (one pool)
    nothing changes. Where each has its own pool (pip wheels), NumPy's is held to one and
    SciPy's keeps the threads, and the fused layers' forward products move to SciPy too
    (two pools both multi-threaded would fight). That is done only when every parameter
    is fused, so no unfused layer's GEMMs lose their threads.
    """
    threads = thread_count()
    if threads == 1 or library_count() <= 1:
        return nullcontext(), False
    if separate_pools() is None or len(targets) != len(net.parameters()):
        return None
    return pool_threads(1, threads), True


@contextmanager
def armed(trainer):
    """Within the block, the fusable parameters of ``trainer``'s layers take their SGD step
    inside the BLAS call that computes their gradient (:class:`FusedSGD`); their gradient
    stays None, so the optimiser and the L2 penalty skip them. Yields True when that is
    every parameter of the net: the optimiser's step then has nothing left to do."""
    targets = fusable_parameters(trainer)
    plan = thread_plan(trainer.net, targets) if targets else None
    if plan is None:
        yield False
        return
    pools, products = plan

    def step(layer, name):
        # λ of every L2 term that covers this parameter (weights always; biases if asked)
        decay = sum(p.lmbda for p in trainer.penalties
                    if name in layer.regularized or p.include_biases)
        return FusedSGD(trainer.optimizer.eta, decay, trainer.n_train, layer.params[name].dtype,
                        products)

    with pools:
        try:
            for layer, name in targets:
                layer.fused_updates[name] = step(layer, name)
            yield len(targets) == len(trainer.net.parameters())
        finally:
            for layer, name in targets:
                layer.fused_updates.pop(name, None)
