"""DRAEM tests run single-threaded: tiny tensors and per-sample synthesis gain nothing from intra-op threads, and
on a shared, oversubscribed machine two OpenMP threads spin-wait for each other (measured: 15x the CPU time)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
