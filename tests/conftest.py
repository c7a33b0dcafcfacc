"""Test-session settings.

The suite runs many tiny GP fits; on a 2-core machine one torch thread is several times faster
for them than the default (thread start-up dominates small matrices). This is a setting of the
test process only: the library never changes torch's thread count.
"""

import torch

torch.set_num_threads(1)
