"""Per-connection adaptive learning rates: delta-bar-delta and Rprop.

Both give every weight its own step size and adapt it from the *sign* of successive
gradients: agreeing signs mean the step can grow, a sign change means it overshot.
Both were designed for full-batch learning (batch_size = n in the Trainer); with
small mini-batches the sign of the gradient is noisy (Hinton, lecture 6: RMSprop is
the mini-batch version of Rprop).
"""
from __future__ import annotations

from ..backend import xp_of
from ..errors import ConfigError
from ..optimizers import Optimizer
from ..utils.state import number


class DeltaBarDelta(Optimizer):
    """Delta-bar-delta (Jacobs 1988). With δ(t) = ∂C/∂w and its running average
    δ̄(t) = (1 − θ)δ(t) + θδ̄(t − 1), each weight's rate ε changes as

        ε ← ε + κ        if δ̄(t − 1)δ(t) > 0   (additive increase)
        ε ← (1 − φ)ε     if δ̄(t − 1)δ(t) < 0   (multiplicative decrease)

    and w ← w − ε δ(t). Every ε starts at η; ``kappa`` defaults to η/20.
    """

    name = "delta-bar-delta"
    slots = ("rate", "bar")

    def __init__(self, eta: float, kappa: float | None = None, phi: float = 0.1,
                 theta: float = 0.7):
        super().__init__(eta)
        # number(): float() read "0.1" and failed on None with a TypeError
        kappa = number(kappa, "kappa", optional=True, error=ConfigError)
        phi, theta = (number(v, key, error=ConfigError)
                      for key, v in (("phi", phi), ("theta", theta)))
        if kappa is not None and not kappa >= 0:
            raise ConfigError(f"delta-bar-delta kappa must be ≥ 0, got {kappa}")
        if not 0 < phi < 1 or not 0 <= theta < 1:
            raise ConfigError(f"delta-bar-delta needs 0 < phi < 1 and 0 ≤ theta < 1, "
                              f"got phi={phi}, theta={theta}")
        self.kappa, self.phi, self.theta = kappa, phi, theta

    def config(self):
        return {**super().config(), "kappa": self.kappa, "phi": self.phi, "theta": self.theta}

    def update(self, i, p, g):
        fresh = len(self.state["rate"]) <= i or self.state["rate"][i] is None
        rate, bar = self._slot("rate", i, p), self._slot("bar", i, p)
        if fresh:
            rate.fill(self.eta)
        kappa = self.eta / 20 if self.kappa is None else self.kappa
        agree = bar * g
        rate += kappa * (agree > 0)
        rate *= 1 - self.phi * (agree < 0)
        bar *= self.theta
        bar += (1 - self.theta) * g
        p -= rate * g


class Rprop(Optimizer):
    """Resilient backpropagation (Riedmiller & Braun 1993), the iRprop⁻ variant
    (Igel & Hüsken 2000). Only the sign of ∂C/∂w is used:

        Δ ← min(η⁺Δ, Δmax)  if ∂C/∂w(t) · ∂C/∂w(t − 1) > 0
        Δ ← max(η⁻Δ, Δmin)  if the product is < 0, and ∂C/∂w(t) is then taken as 0
        w ← w − sgn(∂C/∂w(t)) Δ

    Every Δ starts at η (the initial step, 0.1 by default in the paper).
    """

    name = "rprop"
    slots = ("step", "previous")

    def __init__(self, eta: float = 0.1, eta_plus: float = 1.2, eta_minus: float = 0.5,
                 step_max: float = 50.0, step_min: float = 1e-6):
        super().__init__(eta)
        eta_plus, eta_minus, step_min = (number(v, key, error=ConfigError) for key, v in (
            ("eta_plus", eta_plus), ("eta_minus", eta_minus), ("step_min", step_min)))
        step_max = number(step_max, "step_max", finite=False, error=ConfigError)   # inf: no cap
        if not (0 < eta_minus < 1 < eta_plus):
            raise ConfigError(f"Rprop needs 0 < eta_minus < 1 < eta_plus, "
                              f"got {eta_minus}, {eta_plus}")
        if not 0 <= step_min < step_max:
            raise ConfigError(f"Rprop needs 0 ≤ step_min < step_max, got {step_min}, {step_max}")
        self.eta_plus, self.eta_minus = eta_plus, eta_minus
        self.step_max, self.step_min = step_max, step_min

    def config(self):
        return {**super().config(), "eta_plus": self.eta_plus, "eta_minus": self.eta_minus,
                "step_max": self.step_max, "step_min": self.step_min}

    def update(self, i, p, g):
        xp = xp_of(p)
        fresh = len(self.state["step"]) <= i or self.state["step"][i] is None
        step, previous = self._slot("step", i, p), self._slot("previous", i, p)
        if fresh:
            step.fill(self.eta)
        agree = previous * g
        step[agree > 0] *= self.eta_plus
        step[agree < 0] *= self.eta_minus
        xp.clip(step, self.step_min, self.step_max, out=step)
        g = xp.where(agree < 0, 0, g)           # iRprop⁻: forget a gradient that flipped sign
        p -= xp.sign(g) * step
        previous[...] = g
