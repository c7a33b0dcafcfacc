"""Multi-fidelity tree search: hierarchical partitions of the unit cube explored optimistically.

- :mod:`.partition`: the ``K``-ary partition and its cells, shared by the methods;
- :mod:`.search`: the portfolio driver (budget split, memory of evaluations, cross-validation);
- :mod:`.mf_pdoo`: ``mf-pdoo``, MFPDOO (Sen, Kandasamy & Shakkottai, ICML 2018), told the
  smoothness and the bias function;
- :mod:`.kometo`: ``kometo`` (Fiegel, Gabillon & Valko 2026), told neither (our reconstruction).
"""

from __future__ import annotations

from .kometo import Kometo
from .mf_pdoo import MFPDOO
from .partition import Cell, Partition

__all__ = ["MFPDOO", "TREE_STRATEGIES", "Cell", "Kometo", "Partition"]

#: The tree-search strategies, for the registry.
TREE_STRATEGIES = (MFPDOO, Kometo)
