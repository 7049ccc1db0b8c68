"""Long short-term memory (Hochreiter & Schmidhuber 1997; lecture 7e).

A memory cell c keeps information for as long as its "keep" gate stays open; the
"write" gate decides what enters it and the "read" gate what leaves it:

    i = σ(·)  write (input) gate        f = σ(·)  keep (forget) gate
    o = σ(·)  read (output) gate        g = tanh(·)  candidate to write
    c_t = f ⊙ c_{t−1} + i ⊙ g            h_t = o ⊙ tanh(c_t)

where each (·) is x_t W_k + h_{t−1} U_k + b_k. The four gates are stacked in the order
**i, f, o, g** (the three sigmoids first, so they are one contiguous block); PyTorch uses
i, f, g, o. Backpropagated through c, the error is multiplied only by f at each step —
with the keep gate open (f ≈ 1) it neither vanishes nor explodes, which is the point.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..gpu_kernels import kernel, on_gpu
from ..utils.state import number
from .base import register
from .recurrent import Recurrent, sigmoid_inplace

#: the largest |forget_bias|
MAX_FORGET_BIAS = 100.0


@register
class LSTM(Recurrent):
    """An LSTM layer; ``forget_bias`` (default 1) starts the keep gates open.

    Backward through time, with ∂C/∂h_t = output error + what step t+1 sends back,
    and ∂C/∂c_t = (what step t+1 sends back through f) + ∂C/∂h_t ⊙ o ⊙ (1 − tanh² c_t):
        ∂C/∂o = ∂C/∂h_t ⊙ tanh c_t      ∂C/∂i = ∂C/∂c_t ⊙ g
        ∂C/∂f = ∂C/∂c_t ⊙ c_{t−1}        ∂C/∂g = ∂C/∂c_t ⊙ i
        ∂C/∂c_{t−1} = ∂C/∂c_t ⊙ f        ∂C/∂h_{t−1} = δ_t Uᵀ
    with δ_t the gate errors times σ′ = σ(1 − σ) or tanh′ = 1 − g².
    """

    n_gates = 4
    state_names = ("h", "c")

    def __init__(self, n_in=None, n_hidden=None, initial_state="zeros", init="glorot",
                 forget_bias: float = 1.0, need_input_grad=True):
        super().__init__(n_in, n_hidden, initial_state, init, need_input_grad)
        # σ(±100) is already 0 or 1 in float64; a larger bias only overflows float32 (to inf)
        self.forget_bias = number(forget_bias, "forget_bias", error=ConfigError)
        if abs(self.forget_bias) > MAX_FORGET_BIAS:
            raise ConfigError(f"LSTM forget_bias must be within ±{MAX_FORGET_BIAS:g}, got "
                              f"{forget_bias}")

    def config(self):
        return {**super().config(), "forget_bias": self.forget_bias}

    def _initial_bias(self):
        b = np.zeros(4 * self.n_hidden)
        b[self.n_hidden:2 * self.n_hidden] = self.forget_bias     # the keep gate's block
        return b

    def _scan(self, Z, state0, H):
        xp = self.backend.xp
        n_steps, batch, _ = Z.shape
        n = self.n_hidden
        U = self.params["U"]
        C = xp.empty((n_steps, batch, n), dtype=Z.dtype)
        tanh_C = xp.empty_like(C)
        rec = xp.empty(Z.shape[1:], dtype=Z.dtype)
        h, c = state0
        fused = on_gpu(Z)
        for t in range(n_steps):
            a = Z[t]                                       # becomes the gate activations
            xp.matmul(h, U, out=rec)
            if fused:                  # what follows, in one kernel (gpu_kernels.py)
                kernel("lstm_step")(rec, c, n, a, C[t], tanh_C[t], H[t + 1])
                h, c = H[t + 1], C[t]
                continue
            a += rec
            sigmoid_inplace(xp, a[:, :3 * n])              # i, f, o
            g = a[:, 3 * n:]
            xp.tanh(g, out=g)
            i, f, o = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n]
            c_t = xp.multiply(f, c, out=C[t])              # keep ...
            xp.multiply(i, g, out=rec[:, :n])
            c_t += rec[:, :n]                              # ... and write
            xp.tanh(c_t, out=tanh_C[t])
            h = xp.multiply(o, tanh_C[t], out=H[t + 1])    # read
            c = c_t
        return (h, c), (Z, C, tanh_C)

    def _scan_back(self, dY, cache):
        xp = self.backend.xp
        A, C, tanh_C = cache.steps
        n_steps, batch, n = C.shape
        c0 = cache.state0[1]
        U_T = xp.ascontiguousarray(self.params["U"].T)     # a contiguous Uᵀ: a faster GEMM
        dA = xp.empty_like(A)
        dh = xp.empty((batch, n), dtype=A.dtype)
        dh_next = xp.zeros_like(dh)
        dc = xp.zeros_like(dh)
        tmp = xp.empty_like(dh)
        slope = xp.empty((batch, 3 * n), dtype=A.dtype)
        fused = on_gpu(A)
        for t in range(n_steps - 1, -1, -1):
            a, d = A[t], dA[t]
            if fused:                  # the step below up to the GEMM, in one kernel
                kernel("lstm_step_back")(a, dY[t], dh_next, tanh_C[t],
                                         C[t - 1] if t else c0, n, d, dc)
                xp.matmul(d, U_T, out=dh_next)
                continue
            i, f, o, g = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
            di, df, do, dg = d[:, :n], d[:, n:2 * n], d[:, 2 * n:3 * n], d[:, 3 * n:]
            c_prev = C[t - 1] if t else c0
            tc = tanh_C[t]
            xp.add(dY[t], dh_next, out=dh)                 # ∂C/∂h_t
            xp.multiply(dh, tc, out=do)
            xp.multiply(tc, tc, out=tmp)                   # ∂C/∂c_t += ∂C/∂h_t o (1 − tanh²c)
            xp.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
            xp.multiply(dc, g, out=di)
            xp.multiply(dc, c_prev, out=df)
            xp.multiply(dc, i, out=dg)
            dc *= f                                        # ∂C/∂c_{t−1}
            sig = a[:, :3 * n]                             # σ′ = σ(1 − σ) for i, f, o
            xp.multiply(sig, sig, out=slope)
            xp.subtract(sig, slope, out=slope)
            d[:, :3 * n] *= slope
            xp.multiply(g, g, out=tmp)                     # tanh′ = 1 − g² for g
            xp.subtract(1, tmp, out=tmp)
            dg *= tmp
            xp.matmul(d, U_T, out=dh_next)                 # ∂C/∂h_{t−1}
        return dA, dA, (dh_next, dc)
