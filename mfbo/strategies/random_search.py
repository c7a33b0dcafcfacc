"""Random search at the target fidelity: the baseline every method must beat."""

from __future__ import annotations

from typing import Any

from .base import Strategy


class RandomSearch(Strategy):
    """Configurations drawn uniformly in the encoding (log-uniform on log scales), always
    evaluated at the target fidelity. ``recommend()`` is the best observed configuration."""

    name = "random"

    def _suggest(self) -> tuple[dict[str, Any], float | None]:
        return self.space.sample(self.rng), self.target_fidelity
