"""Fixtures shared by the model tests (``test_cost.py``, ``test_fit.py``, ``test_mf_gp.py``)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny GPs: torch's thread pool only adds overhead, badly so on a shared 2-core machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
