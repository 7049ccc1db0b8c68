"""Optimisers that use curvature, over the flat parameter vector of an :class:`Objective`.

* :func:`minimize` — nonlinear conjugate gradient, BFGS and L-BFGS, by
  ``scipy.optimize.minimize`` (not re-implemented here);
* :func:`newton` — Newton's method with the exact Hessian, Δθ = −(H + λI)⁻¹ ∇C,
  the damping λ adapted Levenberg–Marquardt style (small nets only: H is P × P);
* :func:`hessian_free` — Martens (2010): conjugate gradient on damped Gauss–Newton
  products (G + λI) d = −∇C, warm-started from the previous direction, with the
  Levenberg–Marquardt rule for λ and a backtracking line search.

Each returns a :class:`Result` and leaves the best θ installed in the net.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg

from ..errors import ConfigError, DataError
from ..utils.state import number, whole_number
from .flat import Objective, set_flat

#: user-facing names → scipy.optimize.minimize methods
METHODS = {"cg": "CG", "bfgs": "BFGS", "l-bfgs": "L-BFGS-B", "lbfgs": "L-BFGS-B",
           "l-bfgs-b": "L-BFGS-B"}


@dataclass
class Result:
    """Where an optimiser stopped and what it cost."""

    theta: np.ndarray
    cost: float
    converged: bool
    message: str
    n_iterations: int
    n_evals: int                     # gradient evaluations (full batch)
    n_products: int = 0              # curvature-vector products
    costs: list[float] = field(default_factory=list)      # C after each iteration
    grad_norms: list[float] = field(default_factory=list)


def minimize(objective: Objective, method: str = "l-bfgs", *, max_iter: int = 200,
             tol: float = 1e-6, theta0=None) -> Result:
    """Minimise C(θ) with scipy's nonlinear CG ('cg'), 'bfgs' or 'l-bfgs' (L-BFGS-B).

    ``tol`` is the gradient tolerance (scipy's ``gtol``: the norm for CG and BFGS, the
    largest component for L-BFGS-B). BFGS keeps a dense P × P inverse-Hessian estimate
    (and scipy updates it in O(P³)): use it for small nets, L-BFGS otherwise.
    """
    try:
        scipy_method = METHODS[method.lower()]
    except KeyError:
        raise ConfigError(f"unknown method {method!r}; choose one of cg, bfgs, l-bfgs") from None
    theta0 = _start(objective, theta0, max_iter, tol)
    evals0 = objective.n_evals
    costs: list[float] = []

    def record(intermediate_result):
        costs.append(float(intermediate_result.fun))

    options = {"maxiter": int(max_iter), "gtol": float(tol)}
    if scipy_method == "L-BFGS-B":
        # scipy's default ftol stops L-BFGS while ‖∇C‖ is still far above gtol;
        # like scikit-learn, stop on the cost only when it no longer moves at all.
        options["ftol"] = 64 * np.finfo(float).eps
    res = scipy.optimize.minimize(objective.value_and_grad, theta0, jac=True,
                                  method=scipy_method, callback=record, options=options)
    set_flat(objective.net, res.x)
    return Result(theta=res.x, cost=float(res.fun), converged=bool(res.success),
                  message=str(res.message), n_iterations=int(res.nit),
                  n_evals=objective.n_evals - evals0, costs=costs)


def newton(objective: Objective, *, max_iter: int = 50, damping: float = 1e-3,
           tol: float = 1e-10, theta0=None, eps: float = 1e-5) -> Result:
    """Damped Newton: Δθ = −(H + λI)⁻¹ ∇C with the exact Hessian H (lecture: "the Hessian
    technique"). H is computed from central differences of the exact gradient.

    λ is divided by 10 after a step that lowers C and multiplied by 10 (the step
    retried) when H + λI is not positive definite or C rose, so far from a minimum the
    step is short and gradient-like, and near one it becomes the pure Newton step with
    its quadratic convergence. Stops when ‖∇C‖ < ``tol``.
    """
    if objective.net.backend.dtype != np.float64:
        raise ConfigError("Newton's method needs a float64 net for an accurate Hessian; "
                          "build it with backend=get_backend('cpu', 'float64')")
    theta = _start(objective, theta0, max_iter, tol, damping).copy()
    number(eps, "eps", positive=True, error=ConfigError)
    evals0, products0, lam = objective.n_evals, objective.n_products, float(damping)
    cost, g = objective.value_and_grad(theta)
    costs, norms = [cost], [float(np.linalg.norm(g))]
    message = f"stopped after max_iter={max_iter} iterations"
    it = 0
    while it < int(max_iter) and norms[-1] >= tol:
        hessian = objective.hessian(theta, eps)
        for _ in range(30):
            step = _damped_solve(hessian, g, lam)
            if step is not None:
                new_cost, new_g = objective.value_and_grad(theta + step)
                # Near the minimum C changes below rounding: there a smaller gradient counts.
                flat = new_cost <= cost + 1e-12 * max(1.0, abs(cost))
                if new_cost < cost or (flat and np.linalg.norm(new_g) < norms[-1]):
                    break
            lam = max(10 * lam, 1e-8)
        else:
            message = "no step lowered the cost (the damping grew too large)"
            break
        theta, cost, g, lam, it = theta + step, new_cost, new_g, lam / 10, it + 1
        costs.append(cost)
        norms.append(float(np.linalg.norm(g)))
    converged = norms[-1] < tol
    if converged:
        message = f"‖∇C‖ = {norms[-1]:.2e} < tol = {tol:g}"
    set_flat(objective.net, theta)
    return Result(theta, cost, converged, message, it, objective.n_evals - evals0,
                  objective.n_products - products0, costs, norms)


def _damped_solve(hessian, g, lam):
    """−(H + λI)⁻¹ g by Cholesky, or None when H + λI is not positive definite."""
    try:
        factor = scipy.linalg.cho_factor(hessian + lam * np.eye(len(g)))
    except np.linalg.LinAlgError:
        return None
    return -scipy.linalg.cho_solve(factor, g)


def hessian_free(objective: Objective, *, max_iter: int = 100, cg_max_iter: int = 50,
                 damping: float = 1.0, tol: float = 1e-6, theta0=None) -> Result:
    """Hessian-free optimisation (Martens 2010).

    Each iteration solves (G + λI) d = −∇C approximately by linear CG
    (``scipy.sparse.linalg.cg``) using only Gauss–Newton products G v, never G itself;
    CG starts from 0.95 × the previous d (Martens' warm start). The reduction ratio
    ρ = (C(θ + d) − C(θ)) / q(d), with q the quadratic model, adapts λ
    (ρ < ¼: λ ← 3λ/2; ρ > ¾: λ ← 2λ/3), and a backtracking line search on the step
    length guarantees that C decreases.
    """
    theta = _start(objective, theta0, max_iter, tol, damping).copy()
    whole_number(cg_max_iter, "cg_max_iter", 1, error=ConfigError)
    evals0, products0, lam = objective.n_evals, objective.n_products, float(damping)
    cost, g = objective.value_and_grad(theta)
    costs, norms = [cost], [float(np.linalg.norm(g))]
    d_prev = np.zeros_like(theta)
    message = f"stopped after max_iter={max_iter} iterations"
    it = 0
    while it < int(max_iter) and norms[-1] >= tol:
        gn = objective.gauss_newton_operator(theta)
        operator = scipy.sparse.linalg.LinearOperator(
            (len(theta), len(theta)), matvec=lambda v: gn(v) + lam * v, dtype=np.float64)
        d, _ = scipy.sparse.linalg.cg(operator, -g, x0=0.95 * d_prev,
                                      maxiter=int(cg_max_iter), rtol=1e-6)
        model = float(g @ d + 0.5 * d @ operator.matvec(d))    # q(d) − q(0)
        new_cost, new_g = objective.value_and_grad(theta + d)
        rho = (new_cost - cost) / model if model < 0 else -np.inf
        lam = lam * 1.5 if rho < 0.25 else lam / 1.5 if rho > 0.75 else lam
        step = 1.0
        while new_cost > cost + 1e-4 * step * float(g @ d) and step > 1e-4:
            step *= 0.8                                     # Martens' backtracking factor
            new_cost, new_g = objective.value_and_grad(theta + step * d)
        if new_cost >= cost:
            message = "no step along the CG direction lowered the cost"
            break
        theta, cost, g, d_prev, it = theta + step * d, new_cost, new_g, d, it + 1
        costs.append(cost)
        norms.append(float(np.linalg.norm(g)))
    if norms[-1] < tol:
        message = f"‖∇C‖ = {norms[-1]:.2e} < tol = {tol:g}"
    set_flat(objective.net, theta)
    return Result(theta, cost, norms[-1] < tol, message, it, objective.n_evals - evals0,
                  objective.n_products - products0, costs, norms)


def _start(objective: Objective, theta0, max_iter, tol, damping=None) -> np.ndarray:
    """θ₀ after the checks every optimiser here needs: max_iter = 0 or −1 returned θ₀ as
    the result, a negative or NaN λ made (H + λI) indefinite or NaN, a NaN in θ₀ gave a
    NaN "minimum"."""
    if whole_number(max_iter, "max_iter", None, error=ConfigError) < 1:
        raise ConfigError(f"max_iter must be ≥ 1, got {max_iter}")
    number(tol, "tol", non_negative=True, error=ConfigError)
    if damping is not None:             # λ = 0 is the pure Newton or Gauss–Newton step
        number(damping, "damping", non_negative=True, error=ConfigError)
    if theta0 is None:
        return objective.theta()
    theta0 = np.asarray(theta0, np.float64)
    if theta0.shape != (objective.size,) or not np.isfinite(theta0).all():
        raise DataError(f"theta0 must hold {objective.size} finite numbers (one per "
                        f"parameter), got shape {theta0.shape}"
                        f"{'' if np.isfinite(theta0).all() else ' with NaN or inf'}")
    return theta0
