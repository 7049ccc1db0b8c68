"""The simple recurrent layer (lecture 7): h_t = tanh(x_t W + h_{t−1} U + b)."""
from __future__ import annotations

from .base import register
from .recurrent import Recurrent


@register
class SimpleRNN(Recurrent):
    """A layer of tanh units fully interconnected through time.

    Forward:  h_t = tanh(z_t),  z_t = x_t W + h_{t−1} U + b.
    Backward through time, from ∂C/∂h_t (the output's error plus what step t+1 sends back):
        δ_t = (∂C/∂h_t) ⊙ (1 − h_t²)
        ∂C/∂h_{t−1} += δ_t Uᵀ
    Each step back multiplies the error by Uᵀ and by tanh′ ≤ 1: with small weights it
    shrinks geometrically (vanishing gradients), with large ones it can grow (exploding).
    """

    n_gates = 1

    def _scan(self, Z, state0, H):
        xp = self.backend.xp
        U = self.params["U"]
        rec = xp.empty(Z.shape[1:], dtype=Z.dtype)
        h = state0[0]
        for t in range(Z.shape[0]):
            z = Z[t]
            xp.matmul(h, U, out=rec)
            z += rec
            h = xp.tanh(z, out=H[t + 1])
        return (h,), None

    def _scan_back(self, dY, cache):
        xp = self.backend.xp
        H = cache.H
        U_T = xp.ascontiguousarray(self.params["U"].T)    # a contiguous Uᵀ: a faster GEMM
        dZ = xp.empty(dY.shape, dtype=H.dtype)
        dh_next = xp.zeros(H.shape[1:], dtype=H.dtype)
        slope = xp.empty_like(dh_next)
        for t in range(dY.shape[0] - 1, -1, -1):
            delta = dZ[t]
            xp.add(dY[t], dh_next, out=delta)             # ∂C/∂h_t: output + future
            xp.multiply(H[t + 1], H[t + 1], out=slope)
            xp.subtract(1, slope, out=slope)              # tanh′ = 1 − h²
            delta *= slope
            xp.matmul(delta, U_T, out=dh_next)            # ∂C/∂h_{t−1}
        return dZ, dZ, (dh_next,)
