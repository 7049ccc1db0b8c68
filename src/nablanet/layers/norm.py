"""Local response ("competitive") normalisation across channels (AlexNet).

Krizhevsky, Sutskever & Hinton 2012, §3.3.

Each activity is divided by the summed squares of its neighbours in n adjacent
channels at the same pixel, so a strongly active feature map suppresses the maps
beside it (lateral inhibition, the "competition" of the lectures):

    b_c = a_c / s_c^β,      s_c = k + α Σ_{c' ∈ N(c)} a_{c'}²

with N(c) the channels c − ⌊n/2⌋ … c + ⌊(n−1)/2⌋ that exist (AlexNet: k = 2, n = 5,
α = 10⁻⁴, β = 0.75). Note α multiplies the sum, as in the paper; PyTorch's
``local_response_norm`` divides it by n (its α equals n times this one).

Backward, from g = ∂C/∂b:

    ∂C/∂a_j = g_j s_j^{−β} − 2αβ a_j Σ_{c : j ∈ N(c)} g_c a_c s_c^{−β−1}
"""
from __future__ import annotations

from ..errors import ConfigError
from ..utils.state import number
from .base import is_size, register
from .spatial import ImageLayer, channel_major


@register
class LocalResponseNorm(ImageLayer):
    """Cross-channel normalisation b = a / (k + α Σ_{neighbours} a²)^β (no parameters)."""

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
        super().__init__()
        if not is_size(size):
            raise ConfigError(f"LocalResponseNorm size must be a positive integer, got {size!r}")
        # number(), not float(): float() read "1" and failed on None; NaN passed every test
        alpha, beta, k = (number(v, key, error=ConfigError)
                          for key, v in (("alpha", alpha), ("beta", beta), ("k", k)))
        if alpha < 0 or beta < 0 or k <= 0:
            raise ConfigError(f"LocalResponseNorm needs alpha ≥ 0, beta ≥ 0 and k > 0, "
                              f"got alpha={alpha}, beta={beta}, k={k}")
        self.size, self.alpha, self.beta, self.k = int(size), alpha, beta, k

    def config(self):
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}

    def build(self, input_shape, backend, rng):
        self.backend = backend
        return self._image_shape(input_shape)

    def forward(self, x, train=False):
        self._check_images(x)
        a = channel_major(x)
        before, after = self.size // 2, (self.size - 1) // 2
        s = self._window_sum(a * a, before, after)
        s *= a.dtype.type(self.alpha)
        s += a.dtype.type(self.k)
        scale = s ** a.dtype.type(-self.beta)
        return channel_major(a * scale), (a, s, scale)

    def backward(self, dy, cache):
        a, s, scale = cache
        g = channel_major(dy)
        before, after = self.size // 2, (self.size - 1) // 2
        # Channel c's sum reaches j when c − before ≤ j ≤ c + after: the window mirrored.
        spread = self._window_sum(g * a * scale / s, after, before)
        spread *= a
        spread *= a.dtype.type(2 * self.alpha * self.beta)
        return channel_major(g * scale - spread)

    def _window_sum(self, v, before: int, after: int):
        """Σ over channels c − before … c + after of channel-major ``v`` (zeros outside)."""
        xp, c = self.backend.xp, v.shape[0]
        padded = xp.pad(v, ((before, after), (0, 0), (0, 0), (0, 0)))
        total = padded[0:c].copy()
        for d in range(1, before + after + 1):
            total += padded[d:d + c]
        return total
