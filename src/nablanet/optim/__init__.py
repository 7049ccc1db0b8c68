"""Optimisers beyond first-order SGD.

* ``flat``: a net's cost as a function of one flat parameter vector θ
  (:class:`Objective`: C, ∇C, Hessian and Gauss–Newton products);
* ``second_order``: Newton, Hessian-free, and scipy's CG / BFGS / L-BFGS on it;
* ``adaptive``: per-connection adaptive rates (delta-bar-delta, Rprop) as
  :class:`nablanet.optimizers.Optimizer` subclasses that the Trainer can use.
"""
from .adaptive import DeltaBarDelta, Rprop
from .flat import Objective, flat_grads, get_flat, set_flat, unflatten
from .second_order import METHODS, Result, hessian_free, minimize, newton

__all__ = ["DeltaBarDelta", "METHODS", "Objective", "Result", "Rprop", "flat_grads",
           "get_flat", "hessian_free", "minimize", "newton", "set_flat", "unflatten"]
