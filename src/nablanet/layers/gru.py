"""Gated recurrent unit (Cho et al. 2014), in the form PyTorch and cuDNN use.

    r = σ(x_t W_r + h_{t−1} U_r + b_r)                    reset gate
    z = σ(x_t W_z + h_{t−1} U_z + b_z)                    update gate
    n = tanh(x_t W_n + b_n + r ⊙ (h_{t−1} U_n + b_hn))     candidate
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

The reset gate multiplies (h U_n + b_hn) rather than h itself (Cho's original), so the
recurrent part of all three gates is still one GEMM h_{t−1} U per step; b_hn is the one
bias that cannot be merged into b. Gates are stacked r, z, n, as in PyTorch. Like the
LSTM's cell, h_t = z ⊙ h_{t−1} + … passes the error back multiplied only by z when the
update gate is closed.
"""
from __future__ import annotations

import numpy as np

from .base import register
from .recurrent import Recurrent, sigmoid_inplace


@register
class GRU(Recurrent):
    """A GRU layer; parameters W, U, b (stacked r, z, n) and b_hn.

    Backward through time, from ∂C/∂h_t:
        ∂C/∂n = ∂C/∂h_t ⊙ (1 − z)       ∂C/∂z = ∂C/∂h_t ⊙ (h_{t−1} − n)
        ∂C/∂r = δ_n ⊙ (h_{t−1} U_n + b_hn), with δ_n = ∂C/∂n ⊙ (1 − n²)
        ∂C/∂h_{t−1} = ∂C/∂h_t ⊙ z + δ_rec Uᵀ
    where δ_rec equals δ for r and z, and δ_n ⊙ r for the candidate's recurrent term.
    """

    n_gates = 3

    def _extra_params(self):
        return {"b_hn": np.zeros(self.n_hidden)}

    def _scan(self, Z, state0, H):
        xp = self.backend.xp
        n_steps, batch, _ = Z.shape
        n = self.n_hidden
        U, b_hn = self.params["U"], self.params["b_hn"]
        R = xp.empty_like(Z)                             # h_{t−1} U (+ b_hn), every step
        tmp = xp.empty((batch, n), dtype=Z.dtype)
        h = state0[0]
        for t in range(n_steps):
            a, rec = Z[t], R[t]                          # a becomes the activations r, z, n
            xp.matmul(h, U, out=rec)
            rec[:, 2 * n:] += b_hn
            gates = a[:, :2 * n]
            gates += rec[:, :2 * n]
            sigmoid_inplace(xp, gates)
            r, z, cand = a[:, :n], a[:, n:2 * n], a[:, 2 * n:]
            xp.multiply(r, rec[:, 2 * n:], out=tmp)
            cand += tmp
            xp.tanh(cand, out=cand)
            h_t = xp.subtract(h, cand, out=H[t + 1])     # h_t = n + z (h_{t−1} − n)
            h_t *= z
            h_t += cand
            h = h_t
        return (h,), (Z, R)

    def _scan_back(self, dY, cache):
        xp = self.backend.xp
        A, R = cache.steps
        n_steps, batch, _ = A.shape
        n = self.n_hidden
        U_T = xp.ascontiguousarray(self.params["U"].T)     # a contiguous Uᵀ: a faster GEMM
        dZ = xp.empty_like(A)                            # δ for W and b
        dZ_rec = xp.empty_like(A)                        # δ for U (and b_hn)
        dh = xp.empty((batch, n), dtype=A.dtype)
        dh_next = xp.zeros_like(dh)
        tmp = xp.empty_like(dh)
        for t in range(n_steps - 1, -1, -1):
            a, d, d_rec = A[t], dZ[t], dZ_rec[t]
            r, z, cand = a[:, :n], a[:, n:2 * n], a[:, 2 * n:]
            dr, dz, dn = d[:, :n], d[:, n:2 * n], d[:, 2 * n:]
            h_prev = cache.H[t]
            xp.add(dY[t], dh_next, out=dh)               # ∂C/∂h_t
            xp.subtract(1, z, out=tmp)                   # δ_n = ∂C/∂h (1 − z)(1 − n²)
            xp.multiply(dh, tmp, out=dn)
            xp.multiply(cand, cand, out=tmp)
            xp.subtract(1, tmp, out=tmp)
            dn *= tmp
            xp.subtract(h_prev, cand, out=dz)            # δ_z = ∂C/∂h (h_{t−1} − n) z(1 − z)
            dz *= dh
            xp.multiply(z, z, out=tmp)
            xp.subtract(z, tmp, out=tmp)
            dz *= tmp
            xp.multiply(dn, R[t][:, 2 * n:], out=dr)     # δ_r = δ_n (h U_n + b_hn) r(1 − r)
            xp.multiply(r, r, out=tmp)
            xp.subtract(r, tmp, out=tmp)
            dr *= tmp
            d_rec[:, :2 * n] = d[:, :2 * n]
            xp.multiply(dn, r, out=d_rec[:, 2 * n:])
            xp.matmul(d_rec, U_T, out=dh_next)           # ∂C/∂h_{t−1}
            dh *= z
            dh_next += dh
        return dZ, dZ_rec, (dh_next,)

    def _accumulate_extra(self, dZ, dZ_rec):
        n = self.n_hidden
        self.accumulate("b_hn", dZ_rec[:, :, 2 * n:].sum(axis=(0, 1)))
