"""The synthetic multi-fidelity suite: closed-form benchmarks with known optima and costs.

Every problem here is a :class:`SyntheticProblem`: vectorised in numpy (float64), minimised,
with a known cost model, a known target-fidelity optimum (``optimum``) and, where it is known,
the configuration that attains it (``optimizer``). Maximisation benchmarks (Currin, Park,
Borehole, the BOCA Hartmanns) are negated, so their ``optimum`` is ``-max``.

Registered names (see :func:`mfbo.problems.names`)::

    forrester  currin  park  borehole  hartmann3  hartmann6
    augmented-hartmann  augmented-branin  quadratic-ladder
    mfhartmann3-{good,moderate,bad,terrible}  mfhartmann6-{good,moderate,bad,terrible}

Costs are normalised so that one target-fidelity evaluation costs 1, except where a problem's
docstring says otherwise (``augmented-*``: ``5 + s``, so 6 at the target, as in BoTorch's
multi-fidelity tutorial; ``quadratic-ladder``: ``0.1 * level``, so 0.5 at the target).

Quoted optima were checked numerically (dense grids / multi-start L-BFGS-B, see
``tests/problems/test_synthetic.py``); the constants below carry more digits than the
literature values they round to.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..space import Fidelity, Float, Int, Space
from ..trial import Observation
from . import register, register_group
from .base import Problem

__all__ = [
    "SyntheticProblem", "BlendedProblem", "Forrester", "Currin", "Park", "Borehole",
    "Hartmann", "BoTorchAugmented", "QuadraticLadder", "MF_PRIOR_BENCH_CORRELATIONS",
]


class SyntheticProblem(Problem):
    """A closed-form multi-fidelity problem over a space of ``Float``/``Int`` parameters.

    Subclasses implement

    - ``_values(X, s) -> (n,)``: the noiseless value, where ``X`` is an ``(n, d)`` float64 array
      of parameter values in natural units (space order) and ``s`` an ``(n,)`` array of
      normalised fidelities (``fidelity.normalize(value)``; ``s = 1`` is the target);
    - optionally ``_noise(X, s) -> (n,)``: additive observation noise (default none); it must be
      a deterministic function of ``(X, s)`` so that an evaluation never depends on call order;
    - optionally ``_costs(s) -> (n,)``: the cost model. The default is the BOCA-style
      ``c0 + (1 - c0) * (v / v_target)**2`` of the raw fidelity value ``v``, with
      ``c0 = cost_floor`` (0.1 unless a subclass says otherwise), so the target costs 1.

    Attributes:
        optimum: the minimum of the target-fidelity objective.
        optimizer: a configuration (dict) that attains ``optimum``, or ``None`` if unknown.
    """

    cost_floor: float = 0.1

    def __init__(
        self,
        name: str,
        space: Space,
        fidelity: Fidelity,
        optimum: float,
        optimizer: Mapping[str, Any] | None = None,
    ) -> None:
        if fidelity is None:
            raise ValueError(f"problem {name!r}: a synthetic problem needs a fidelity")
        super().__init__(name, space, fidelity, optimum)
        self.optimizer = None if optimizer is None else space.validate(optimizer)

    # Hooks for subclasses -------------------------------------------------------------------
    def _values(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # abstract

    def _noise(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.zeros_like(s)

    def _costs(self, s: np.ndarray) -> np.ndarray:
        ratio = self._fidelity_values(s) / float(self.fidelity.target)
        return self.cost_floor + (1.0 - self.cost_floor) * ratio**2

    # Helpers ---------------------------------------------------------------------------------
    def _fidelity_values(self, s: np.ndarray) -> np.ndarray:
        """Raw fidelity values of normalised ``s`` (the inverse of ``Fidelity.normalize``)."""
        fid = self.fidelity
        warp = np.log if fid.log else (lambda v: v)
        lo, tg = warp(float(fid.low)), warp(float(fid.target))
        w = lo + np.asarray(s, dtype=np.float64) * (tg - lo)
        return np.exp(w) if fid.log else w

    def _row(self, config: Mapping[str, Any]) -> np.ndarray:
        return np.array([[float(config[name]) for name in self.space]], dtype=np.float64)

    def _compute(self, X: np.ndarray, s: np.ndarray, noise: bool) -> np.ndarray:
        out = np.asarray(self._values(X, s), dtype=np.float64)
        return out + self._noise(X, s) if noise else out

    # Public interface ------------------------------------------------------------------------
    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        s = np.array([self.fidelity.normalize(fidelity)], dtype=np.float64)
        value = self._compute(self._row(config), s, noise=True)[0]
        return Observation(value=float(value), cost=float(self._costs(s)[0]))

    def target_value(self, config: Mapping[str, Any]) -> float:
        """The noiseless value of ``config`` at the target fidelity."""
        X = self._row(self.space.validate(config))
        return float(self._values(X, np.ones(1))[0])

    def cost(self, config: Mapping[str, Any] | None = None, fidelity: Any = None) -> float:
        """The cost of one evaluation at ``fidelity`` (``None``: the target); ``config`` is unused."""
        fidelity = self.validate_fidelity(fidelity)
        return float(self._costs(np.array([self.fidelity.normalize(fidelity)], dtype=np.float64))[0])

    def values(self, X: Sequence | np.ndarray, fidelity: Any = None, *, noise: bool = True) -> np.ndarray:
        """Vectorised :meth:`evaluate` values for grids and tests.

        Args:
            X: ``(n, d)`` (or ``(d,)``) parameter values in natural units, in space order. They
                are not checked against the bounds or rounded, so continuous relaxations of
                ``Int`` parameters can be evaluated.
            fidelity: a fidelity value, an ``(n,)`` array of them, or ``None`` for the target.
                Each value is validated (``ValueError`` naming the fidelity).
            noise: add the observation noise (the same draws as :meth:`evaluate` makes);
                ``False`` gives the noiseless values.

        Returns:
            An ``(n,)`` float64 array.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != len(self.space):
            raise ValueError(f"problem {self.name!r}: values expects X of shape (n, {len(self.space)}), got {X.shape}")
        n = X.shape[0]
        raw = np.asarray(self.fidelity.target if fidelity is None else fidelity, dtype=np.float64)
        if raw.ndim > 1 or (raw.ndim == 1 and raw.shape[0] != n):
            raise ValueError(f"problem {self.name!r}: fidelity must be a scalar or an array of shape ({n},), got {raw.shape}")
        for v in np.unique(raw):
            self.fidelity.validate(v)
        s = np.broadcast_to(np.asarray(self.fidelity.normalize(raw), dtype=np.float64), (n,)).copy()
        return self._compute(X, s, noise)

    def bias_bound(self, fidelity: Any) -> float:
        """``zeta(z) = max_x |f_z(x) - f(x)|`` of the noiseless values, plus :meth:`_noise_bound`.

        The maximum is taken over a fixed design: the ``2^d`` corners (``d <= 10``), the known
        optimizer and 4096 uniform points (numpy seed 0) of the box, so it is an estimate from
        below of the supremum (exact where the bias is largest at a corner, as for the blends
        ``(1 - s)(f_L - f_H)`` of Park and Borehole). Subclasses with a closed form override it.
        Cached by fidelity value.
        """
        value = self.validate_fidelity(fidelity)
        cache = self.__dict__.setdefault("_bias_cache", {})
        if value not in cache:
            X = self._bias_design()
            n = X.shape[0]
            s = np.full(n, float(self.fidelity.normalize(value)))
            gap = np.abs(self._compute(X, s, noise=False) - self._compute(X, np.ones(n), noise=False))
            cache[value] = float(np.max(gap)) + float(self._noise_bound(s[:1])[0])
        return cache[value]

    def _bias_design(self) -> np.ndarray:
        """``(n, d)`` points of the box (natural units, integers relaxed) for :meth:`bias_bound`."""
        lows = np.array([float(self.space[name].low) for name in self.space])
        highs = np.array([float(self.space[name].high) for name in self.space])
        d = lows.shape[0]
        U = [np.random.default_rng(0).random((4096, d))]
        if d <= 10:
            U.append(((np.arange(2**d)[:, None] >> np.arange(d)[None, :]) & 1).astype(np.float64))
        X = lows + np.concatenate(U) * (highs - lows)
        return X if self.optimizer is None else np.vstack([X, self._row(self.optimizer)])

    def _noise_bound(self, s: np.ndarray) -> np.ndarray:
        """A bound of the observation noise at normalised fidelities ``s`` (none by default)."""
        return np.zeros_like(s)

    @property
    def noiseless_target(self) -> bool:
        """Whether :meth:`_noise_bound` is 0 at the target: every function of the suite, the noisy
        mf-prior-bench forms included (their noise vanishes at ``z = 1``). A subclass that adds
        target noise declares it through its :meth:`_noise_bound`."""
        return float(self._noise_bound(np.ones(1))[0]) == 0.0

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["optimizer"] = self.optimizer
        return out


class BlendedProblem(SyntheticProblem):
    """A fidelity blend ``s * f_high(x) + (1 - s) * f_low(x)`` of two closed-form functions.

    The form of BOCA (Kandasamy et al., ICML 2017) for Park and Borehole. Subclasses implement
    ``_high(X)`` (the target objective, already in minimisation sign) and ``_low(X)``.
    """

    def _high(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # abstract

    def _low(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # abstract

    def _values(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        return s * self._high(X) + (1.0 - s) * self._low(X)


def _unit_space(d: int) -> Space:
    return Space({f"x{i + 1}": Float(0.0, 1.0) for i in range(d)})


def _unit_fidelity() -> Fidelity:
    return Fidelity("z", 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
class Forrester(BlendedProblem):
    """Forrester et al. (2007), *Multi-fidelity optimization via surrogate modelling*, Proc. R. Soc. A.

    ``x in [0, 1]``, two fidelity levels ``Fidelity("fidelity", levels=[0, 1])`` (1 = target)::

        f_H(x) = (6x - 2)^2 sin(12x - 4)
        f_L(x) = 0.5 f_H(x) + 10 (x - 0.5) + 5

    The low fidelity is deliberately misleading: its minimum is near ``x = 0.092``, far from
    the target's. Cost (our choice): 0.1 at the low level, 1 at the target.
    Optimum ``min f_H = -6.0207400557`` at ``x = 0.7572487585``.
    """

    def __init__(self) -> None:
        super().__init__(
            "forrester", Space(x=Float(0.0, 1.0)), Fidelity("fidelity", levels=[0, 1]),
            optimum=-6.020740055767083, optimizer={"x": 0.7572487585233},
        )

    def _high(self, X: np.ndarray) -> np.ndarray:
        x = X[:, 0]
        return (6 * x - 2) ** 2 * np.sin(12 * x - 4)

    def _low(self, X: np.ndarray) -> np.ndarray:
        return 0.5 * self._high(X) + 10 * (X[:, 0] - 0.5) + 5


class Currin(SyntheticProblem):
    """Currin exponential function (Currin et al. 1988), multi-fidelity form of Xiong et al. (2013).

    ``x in [0, 1]^2``, continuous fidelity ``z in [0, 1]`` (target 1); we minimise ``-f``::

        f(x, z) = [1 - alpha(z) exp(-1 / (2 x2))] R(x1),   alpha(z) = 1 - 0.1 (1 - z)
        R(x1) = (2300 x1^3 + 1900 x1^2 + 2092 x1 + 60) / (100 x1^3 + 500 x1^2 + 4 x1 + 20)

    ``exp(-1/(2 x2))`` is taken as its limit 0 at ``x2 = 0``. Cost ``0.1 + 0.9 z^2`` (BOCA-style;
    our choice). Optimum ``max f = 13.7987220447`` at ``x = (0.2166667, 0)`` (on the ``x2 = 0``
    edge, where the bracket is 1 for every ``z``), so ``optimum = -13.7987220447``.
    """

    def __init__(self) -> None:
        super().__init__(
            "currin", _unit_space(2), _unit_fidelity(),
            optimum=-13.798722044728438, optimizer={"x1": 0.216666668118, "x2": 0.0},
        )

    def _values(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        x1, x2 = X[:, 0], X[:, 1]
        safe = np.where(x2 > 0, x2, 1.0)
        decay = np.where(x2 > 0, np.exp(-1.0 / (2.0 * safe)), 0.0)
        alpha = 1.0 - 0.1 * (1.0 - s)
        r = (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60) / (100 * x1**3 + 500 * x1**2 + 4 * x1 + 20)
        return -(1.0 - alpha * decay) * r


class Park(BlendedProblem):
    """Park (1991) function 1 ("Park91a"), with the low fidelity of Xiong et al. (2013), as in BOCA.

    ``x in (0, 1]^4``; we use ``x1 in [1e-6, 1]`` (the formula divides by ``x1``) and
    ``x2, x3, x4 in [0, 1]``. Continuous fidelity ``z in [0, 1]``, value
    ``z f_H + (1 - z) f_L``, negated::

        f_H = (x1/2) [sqrt(1 + (x2 + x3^2) x4 / x1^2) - 1] + (x1 + 3 x4) exp(1 + sin x3)
        f_L = (1 + sin(x1)/10) f_H - 2 x1 + x2^2 + x3^2 + 0.5

    Cost ``0.1 + 0.9 z^2``. Optimum ``max f_H = 25.5892541586`` at ``(1, 1, 1, 1)``, so
    ``optimum = -25.5892541586``.
    """

    def __init__(self) -> None:
        space = Space(x1=Float(1e-6, 1.0), x2=Float(0.0, 1.0), x3=Float(0.0, 1.0), x4=Float(0.0, 1.0))
        super().__init__(
            "park", space, _unit_fidelity(),
            optimum=-25.589254158606547, optimizer={"x1": 1.0, "x2": 1.0, "x3": 1.0, "x4": 1.0},
        )

    @staticmethod
    def _park(X: np.ndarray) -> np.ndarray:
        x1, x2, x3, x4 = X.T
        return x1 / 2 * (np.sqrt(1 + (x2 + x3**2) * x4 / x1**2) - 1) + (x1 + 3 * x4) * np.exp(1 + np.sin(x3))

    def _high(self, X: np.ndarray) -> np.ndarray:
        return -self._park(X)

    def _low(self, X: np.ndarray) -> np.ndarray:
        x1, x2, x3 = X[:, 0], X[:, 1], X[:, 2]
        return -((1 + np.sin(x1) / 10) * self._park(X) - 2 * x1 + x2**2 + x3**2 + 0.5)


class Borehole(BlendedProblem):
    """Borehole water-flow function (Harper & Gupta 1983; Morris et al. 1993), low fidelity of
    Xiong et al. (2013), in the BOCA form ``z f_H + (1 - z) f_L`` (Kandasamy et al., ICML 2017).

    Eight parameters with the standard ranges: ``rw in [0.05, 0.15]``, ``r in [100, 50000]``,
    ``Tu in [63070, 115600]``, ``Hu in [990, 1110]``, ``Tl in [63.1, 116]``, ``Hl in [700, 820]``,
    ``L in [1120, 1680]``, ``Kw in [9855, 12045]``. With ``lr = ln(r / rw)``::

        f_H = 2 pi Tu (Hu - Hl) / (lr (1   + 2 L Tu / (lr rw^2 Kw) + Tu / Tl))
        f_L =    5 Tu (Hu - Hl) / (lr (1.5 + 2 L Tu / (lr rw^2 Kw) + Tu / Tl))

    We minimise ``-f``. Cost ``0.1 + 0.9 z^2``. Optimum ``max f_H = 309.5755876604`` at the
    corner ``rw=0.15, r=100, Tu=115600, Hu=1110, Tl=116, Hl=700, L=1120, Kw=12045``.
    """

    def __init__(self) -> None:
        space = Space(
            rw=Float(0.05, 0.15), r=Float(100.0, 50000.0), Tu=Float(63070.0, 115600.0), Hu=Float(990.0, 1110.0),
            Tl=Float(63.1, 116.0), Hl=Float(700.0, 820.0), L=Float(1120.0, 1680.0), Kw=Float(9855.0, 12045.0),
        )
        optimizer = {"rw": 0.15, "r": 100.0, "Tu": 115600.0, "Hu": 1110.0, "Tl": 116.0, "Hl": 700.0, "L": 1120.0, "Kw": 12045.0}
        super().__init__("borehole", space, _unit_fidelity(), optimum=-309.5755876604079, optimizer=optimizer)

    @staticmethod
    def _flow(X: np.ndarray, scale: float, offset: float) -> np.ndarray:
        rw, r, tu, hu, tl, hl, length, kw = X.T
        lr = np.log(r / rw)
        return scale * tu * (hu - hl) / (lr * (offset + 2 * length * tu / (lr * rw**2 * kw) + tu / tl))

    def _high(self, X: np.ndarray) -> np.ndarray:
        return -self._flow(X, 2 * math.pi, 1.0)

    def _low(self, X: np.ndarray) -> np.ndarray:
        return -self._flow(X, 5.0, 1.5)


# ---------------------------------------------------------------------------------------------
_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_HARTMANN = {
    # dim: (A, P, optimum of the standard (negated) Hartmann, known argmin)
    3: (
        np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]),
        1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]], dtype=np.float64),
        -3.862779787332663,
        (0.114614, 0.555649, 0.852547),
    ),
    6: (
        np.array([
            [10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
            [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14],
        ]),
        1e-4 * np.array([
            [1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
            [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381],
        ], dtype=np.float64),
        -3.3223680114155147,
        (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573),
    ),
}

#: mf-prior-bench presets: correlation name -> (fidelity bias b, noise scale n).
MF_PRIOR_BENCH_CORRELATIONS: dict[str, tuple[float, float]] = {
    "good": (2.5, 2.0), "moderate": (3.0, 3.0), "bad": (3.5, 4.0), "terrible": (4.0, 5.0),
}


class Hartmann(SyntheticProblem):
    """Multi-fidelity Hartmann (3-D or 6-D on ``[0, 1]^d``), minimised::

        f(x, z) = -sum_i alpha'_i(z) exp(-sum_j A_ij (x_j - P_ij)^2) + |eps| * noise * (1 - zhat)
        alpha'(z) = alpha - bias * (1 - zhat)      (subtracted from every alpha_i)

    with the standard ``alpha, A, P``. ``zhat`` is the normalised fidelity, on a log scale when
    ``log_bias`` is set. At the target ``zhat = 1``, so the target is the plain Hartmann
    function: ``optimum = -3.8627797873`` (3-D, argmin ``(0.114614, 0.555649, 0.852547)``) or
    ``-3.3223680114`` (6-D, argmin ``(0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)``),
    and :meth:`target_value` is exact even when there is noise.

    Two forms, one constructor each:

    - :meth:`boca`: Kandasamy et al., *Multi-fidelity Bayesian optimisation with continuous
      approximations* (BOCA, ICML 2017): ``z in [0, 1]``, ``bias = 0.1``, no noise, cost
      ``0.1 + 0.9 z^2``.
    - :meth:`mf_prior_bench`: the MFHartmann benchmarks of mf-prior-bench (Mallik et al.,
      PriorBand, NeurIPS 2023): integer ``z in {1, ..., 100}``, ``zhat = ln z / ln 100``,
      ``(bias, noise)`` from :data:`MF_PRIOR_BENCH_CORRELATIONS`, cost
      ``0.05 + 0.95 (z / 100)^2``. ``eps ~ N(0, 1)`` is drawn from a generator seeded by
      ``(seed, crc32(x, z))``, as mf-prior-bench seeds it from the configuration and ``z``: an
      evaluation is a pure function of ``(seed, x, z)``, so repeating it gives the same value and
      results never depend on the order of calls (which resumed or parallel runs change).
    """

    def __init__(
        self,
        name: str,
        dim: int,
        fidelity: Fidelity,
        *,
        bias: float,
        noise: float = 0.0,
        log_bias: bool = False,
        cost_floor: float = 0.1,
        seed: int = 0,
    ) -> None:
        if dim not in _HARTMANN:
            raise ValueError(f"problem {name!r}: Hartmann is defined for dim 3 or 6, got {dim!r}")
        self._A, self._P, optimum, argmin = _HARTMANN[dim]
        self.bias = float(bias)
        self.noise = float(noise)
        self.log_bias = bool(log_bias)
        self.cost_floor = float(cost_floor)
        self.seed = int(seed)
        space = _unit_space(dim)
        super().__init__(name, space, fidelity, optimum=optimum, optimizer=dict(zip(space, argmin)))

    @classmethod
    def boca(cls, dim: int) -> Hartmann:
        """The BOCA form: ``hartmann3`` / ``hartmann6``."""
        return cls(f"hartmann{dim}", dim, _unit_fidelity(), bias=0.1)

    @classmethod
    def mf_prior_bench(cls, dim: int, correlation: str, seed: int = 0) -> Hartmann:
        """The mf-prior-bench form: ``mfhartmann{dim}-{correlation}``."""
        if correlation not in MF_PRIOR_BENCH_CORRELATIONS:
            raise ValueError(f"mfhartmann: correlation must be one of {list(MF_PRIOR_BENCH_CORRELATIONS)!r}, got {correlation!r}")
        bias, noise = MF_PRIOR_BENCH_CORRELATIONS[correlation]
        return cls(
            f"mfhartmann{dim}-{correlation}", dim, Fidelity("z", 1, 100, integer=True, log=True),
            bias=bias, noise=noise, log_bias=True, cost_floor=0.05, seed=seed,
        )

    def _zhat(self, s: np.ndarray) -> np.ndarray:
        if not self.log_bias:
            return s
        v = self._fidelity_values(s)
        lo, tg = float(self.fidelity.low), float(self.fidelity.target)
        return np.log(v / lo) / math.log(tg / lo)

    def _values(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        alpha = _HARTMANN_ALPHA[None, :] - self.bias * (1.0 - self._zhat(s))[:, None]
        inner = np.sum(self._A[None] * (X[:, None, :] - self._P[None]) ** 2, axis=-1)
        return -np.sum(alpha * np.exp(-inner), axis=-1)

    def _noise(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        if self.noise == 0.0:
            return np.zeros_like(s)
        keys = (zlib.crc32(np.append(x, z).tobytes()) for x, z in zip(X, s))
        eps = np.array([np.random.default_rng([self.seed, key]).standard_normal() for key in keys])
        return np.abs(eps) * self.noise * (1.0 - self._zhat(s))

    def _noise_bound(self, s: np.ndarray) -> np.ndarray:
        """``3 * noise * (1 - zhat)``: ``|eps| <= 3`` fails with probability 0.27 %, so the
        :meth:`bias_bound` of the noisy mf-prior-bench forms holds for 99.7 % of evaluations."""
        return 3.0 * self.noise * (1.0 - self._zhat(np.asarray(s, dtype=np.float64)))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(bias=self.bias, noise=self.noise, seed=self.seed)
        return out


# ---------------------------------------------------------------------------------------------
class BoTorchAugmented(SyntheticProblem):
    """A multi-fidelity test function of ``botorch.test_functions.multi_fidelity``.

    The last input of the BoTorch function is the fidelity ``s in [0, 1]`` (target 1); the
    function is used with ``negate=False`` (it is already a minimisation problem) on float64
    tensors. Cost ``5 + s`` as in BoTorch's multi-fidelity tutorial (a fixed cost of 5 plus
    ``s``), so one target evaluation costs 6: *not* normalised to 1.

    - ``augmented-hartmann``: ``AugmentedHartmann``, ``x in [0, 1]^6``; the bias
      ``-0.1 (1 - s)`` is on ``alpha_1`` only. Optimum ``-3.32237`` (BoTorch's
      ``optimal_value``) at ``(0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)``.
    - ``augmented-branin``: ``AugmentedBranin``, ``x1 in [-5, 10]``, ``x2 in [0, 15]``; at
      ``s = 1`` the Branin function. Optimum ``0.397887`` (BoTorch's ``optimal_value``), attained
      at ``(-pi, 12.275)``, ``(pi, 2.275)`` and ``(3 pi, 2.475)``; ``optimizer`` is the first.
    """

    def __init__(self, name: str, function_class: type, levels: Sequence[float] | None = None) -> None:
        import torch

        self._fn = function_class(negate=False)
        bounds = self._fn.bounds.to(dtype=torch.float64).numpy()  # (2, d + 1)
        d = bounds.shape[1] - 1
        space = Space({f"x{i + 1}": Float(float(bounds[0, i]), float(bounds[1, i])) for i in range(d)})
        argmin = next(opt for opt in self._fn._optimizers if opt[-1] == 1)
        super().__init__(
            name, space, Fidelity("s", 0.0, 1.0) if levels is None else Fidelity("s", levels=levels),
            optimum=float(self._fn.optimal_value), optimizer=dict(zip(space, argmin[:-1])),
        )

    def _values(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        import torch

        inputs = torch.as_tensor(np.column_stack([X, self._fidelity_values(s)]), dtype=torch.float64)
        with torch.no_grad():
            return self._fn.evaluate_true(inputs).numpy().astype(np.float64)

    def _costs(self, s: np.ndarray) -> np.ndarray:
        return 5.0 + self._fidelity_values(s)


def _augmented(kind: str, levels: Sequence[float] | None = None) -> BoTorchAugmented:
    """``levels`` (optional) makes the fidelity discrete, e.g. ``[0.5, 0.75, 1.0]`` as in
    BoTorch's discrete multi-fidelity tutorial; they must end at the target 1.0."""
    from botorch.test_functions.multi_fidelity import AugmentedBranin, AugmentedHartmann

    if levels is not None and (len(levels) < 2 or float(levels[-1]) != 1.0 or min(levels) < 0):
        raise ValueError(f"augmented-{kind}: levels must be increasing values in [0, 1] ending at 1.0, got {levels!r}")
    cls = {"hartmann": AugmentedHartmann, "branin": AugmentedBranin}[kind]
    return BoTorchAugmented(f"augmented-{kind}", cls, levels)


# ---------------------------------------------------------------------------------------------
class QuadraticLadder(SyntheticProblem):
    """The textbook example: a 2-D quadratic with a ladder of five biased fidelity levels.

    ``lr in [0, 0.01]`` (float), ``bs in {16, ..., 256}`` (int),
    ``Fidelity("level", levels=[1, 2, 3, 4, 5])`` (target 5)::

        value = (lr - 0.005)^2 + (bs - 64)^2 / 1000 + 0.5 (5 - level)

    Cost ``0.1 * level`` as in the source, so one target evaluation costs 0.5 (not 1).
    Optimum 0 at ``lr = 0.005, bs = 64``.
    """

    def __init__(self) -> None:
        super().__init__(
            "quadratic-ladder", Space(lr=Float(0.0, 0.01), bs=Int(16, 256)),
            Fidelity("level", levels=[1, 2, 3, 4, 5]), optimum=0.0, optimizer={"lr": 0.005, "bs": 64},
        )

    def _values(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        level = self._fidelity_values(s)
        return (X[:, 0] - 0.005) ** 2 + (X[:, 1] - 64) ** 2 / 1000 + 0.5 * (5 - level)

    def _costs(self, s: np.ndarray) -> np.ndarray:
        return 0.1 * self._fidelity_values(s)

    def bias_bound(self, fidelity: Any) -> float:
        """Exact: the bias ``0.5 (5 - level)`` does not depend on the configuration."""
        return 0.5 * (5 - float(self.validate_fidelity(fidelity)))


# Registry --------------------------------------------------------------------------------------
register("forrester", Forrester)
register("currin", Currin)
register("park", Park)
register("borehole", Borehole)
for _dim in (3, 6):
    register(f"hartmann{_dim}", functools.partial(Hartmann.boca, _dim))
    for _corr in MF_PRIOR_BENCH_CORRELATIONS:
        register(f"mfhartmann{_dim}-{_corr}", functools.partial(Hartmann.mf_prior_bench, _dim, _corr))
register("augmented-hartmann", functools.partial(_augmented, "hartmann"))
register("augmented-branin", functools.partial(_augmented, "branin"))
register("quadratic-ladder", QuadraticLadder)
del _dim, _corr
#: The synthetic suite as a group: ``problems = ["synthetic"]`` in a study.
register_group("synthetic", [
    "forrester", "currin", "park", "borehole", "augmented-hartmann", "augmented-branin", "quadratic-ladder",
    *(f"hartmann{d}" for d in (3, 6)), *(f"mfhartmann{d}-{c}" for d in (3, 6) for c in MF_PRIOR_BENCH_CORRELATIONS),
])
