"""mfbo.lbfgsb: SciPy's L-BFGS-B with BLAS held to one thread, and only while it runs."""

import numpy as np
from threadpoolctl import threadpool_info

from mfbo.lbfgsb import minimize_lbfgsb


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_minimises_within_bounds_and_holds_blas_to_one_thread_only_inside():
    seen: list[list[int]] = []
    target = np.array([0.3, 1.5, -0.4])  # the last two outside the box [0, 1]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        seen.append(_blas_threads())
        return float(np.sum((x - target) ** 2)), 2 * (x - target)

    before = _blas_threads()
    result = minimize_lbfgsb(fun, np.full(3, 0.5), [(0.0, 1.0)] * 3, maxiter=50)
    np.testing.assert_allclose(result.x, [0.3, 1.0, 0.0], atol=1e-6)
    assert seen and all(threads == [1] * len(threads) for threads in seen)
    assert _blas_threads() == before  # the caller's setting is restored
