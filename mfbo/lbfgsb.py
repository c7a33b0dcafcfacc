"""Bounded L-BFGS-B through SciPy, with BLAS held to one thread while it runs.

Since SciPy 1.15 (L-BFGS-B's Fortran translated to C) each iteration of ``setulb`` calls
OpenBLAS on vectors of a few hundred entries, and OpenBLAS wakes its thread pool for each call
(scipy/scipy#22438). Where the cores are busy (a second benchmark worker, a Dask worker next to
this one, the objective's own training) every wake-up waits for a core: on this project's 2-core
machine, with one other process busy, a 15-variable minimisation took 24 ms with the default
pool and 0.6 ms with one BLAS thread, and ``setulb`` was 27 s of an 88 s ``mf-ucb`` run on
``rbv2_xgboost/16``. BoTorch holds BLAS to one thread around its own SciPy calls
(``gen_candidates_scipy``, ``minimize_with_timeout``) for the same reason; this module does the
same for mfbo's (the acquisition polish and the compressed learning-curve GP fit). The limit
covers the SciPy call only, so the objective and torch keep their own thread settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import OptimizeResult, minimize
from threadpoolctl import threadpool_limits

__all__ = ["minimize_lbfgsb"]


def minimize_lbfgsb(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    bounds: Sequence[tuple[float, float]],
    maxiter: int,
) -> OptimizeResult:
    """``scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", ...)`` with one BLAS thread.

    Args:
        fun: ``x (n,) -> (value, gradient (n,))``.
        x0: ``(n,)`` the start.
        bounds: ``n`` pairs ``(low, high)``.
        maxiter: the L-BFGS-B iteration limit.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
