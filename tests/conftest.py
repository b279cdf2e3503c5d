"""Test-session settings shared by every test file."""

import torch

# The tests run tiny tensors; with several threads, thread start-up and contention dominate (a 55x55 tanh
# took 6 ms on 2 threads against 0.01 ms on one, on the 2-core development machine).
torch.set_num_threads(1)
