"""Cost-aware multi-fidelity acquisitions: each picks the configuration and the fidelity jointly.

=============  ======================================================================
name           method
=============  ======================================================================
``mf-kg``      knowledge gradient per unit cost, value at the target (taKG idea), exact
               discrete KG over a candidate set (:mod:`.kg`)
``mf-mes``     max-value entropy search per unit cost (Takeno et al. 2020) (:mod:`.mes`)
``mf-gibbon``  the GIBBON lower bound of MF-MES per unit cost, q > 1 (:mod:`.mes`)
``mf-ei``      augmented expected improvement per unit cost (Huang et al. 2006) (:mod:`.ei`)
``mf-ucb``     BOCA / MF-GP-UCB: UCB at the target, then the fidelity by an
               information threshold (Kandasamy et al. 2016, 2017) (:mod:`.ucb`)
=============  ======================================================================

The conventions they share (inputs, signs, costs, randomness) are in :mod:`.base`.
"""

from .base import Acquisition, AcquisitionContext
from .ei import MultiFidelityEI
from .kg import MultiFidelityKG
from .mes import MultiFidelityGIBBON, MultiFidelityMES
from .ucb import MultiFidelityUCB

#: name -> acquisition class, in the order of the table above.
ACQUISITIONS: dict[str, type[Acquisition]] = {
    cls.name: cls for cls in (MultiFidelityKG, MultiFidelityMES, MultiFidelityGIBBON, MultiFidelityEI, MultiFidelityUCB)
}

__all__ = [
    "Acquisition", "AcquisitionContext", "ACQUISITIONS",
    "MultiFidelityKG", "MultiFidelityMES", "MultiFidelityGIBBON", "MultiFidelityEI", "MultiFidelityUCB",
]
