"""How data-parallel evaluation deals items to processes (eval/data_parallel.py)."""

import pytest

from unlearnkit.eval.data_parallel import shard_block, shard_indices
from unlearnkit.eval.generation import PAPER_GENERATION_BATCH


@pytest.mark.parametrize("n, world, block", [(7, 2, 1), (100, 3, 30), (31, 2, 30), (5, 4, 30)])
def test_every_item_goes_to_exactly_one_process(n, world, block):
    dealt = sorted(i for rank in range(world) for i in shard_indices(n, world, rank, block))
    assert dealt == list(range(n))


def test_default_deals_items_round_robin():
    assert shard_indices(7, 2, 0) == [0, 2, 4, 6]
    assert shard_indices(7, 2, 1) == [1, 3, 5]


def test_paper_profile_keeps_the_paper_generation_batches_whole():
    """Under ``paper`` a generation budget is set per batch of 30 consecutive items: each
    process's items, cut in 30s, must be exactly batches of the one-process order."""
    block = shard_block("paper")
    assert block == PAPER_GENERATION_BATCH and shard_block("default") == 1
    n, world = 100, 2
    batches = {tuple(range(s, min(s + block, n))) for s in range(0, n, block)}
    for rank in range(world):
        mine = shard_indices(n, world, rank, block)
        cut = {tuple(mine[s : s + block]) for s in range(0, len(mine), block)}
        assert cut <= batches
