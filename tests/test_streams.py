"""simulator.streams derives a named stream's seed words itself (faster than numpy's
SeedSequence); these tests hold it to numpy's own construction, state for state."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from simulator import streams
from simulator.streams import name_key, named_rng


def _numpy_rng(seed: int, key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 2**31, 2**32 - 1, 2**32, 2**64 + 5, 2**128 - 1, 2**128 + 3, 2**200 + 1])
def test_named_rng_state_equals_numpys_seed_sequence(seed: int) -> None:
    # Seeds of 1 to 7 words: padding to the pool of 4 and words past the pool are both exercised.
    for i in range(200):
        name = f"service.s{i}.get"
        assert named_rng(seed, name).bit_generator.state == _numpy_rng(seed, name_key(name)).bit_generator.state


@pytest.mark.parametrize("key", [0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1])
def test_one_and_two_word_keys(key: int) -> None:
    # A key below 2**32 is one 32-bit word in numpy's entropy, a larger one two.
    got = np.random.Generator(np.random.PCG64(streams._NamedSeed(5, key)))
    assert got.bit_generator.state == _numpy_rng(5, key).bit_generator.state
    with pytest.raises(ValueError, match="key must be a 64-bit"):
        streams._NamedSeed(5, 2**64)


def test_seed_sequence_stand_in_behaves_like_the_real_one() -> None:
    g, ref = named_rng(3, "x"), _numpy_rng(3, name_key("x"))
    assert [c.random() for c in g.spawn(3)] == [c.random() for c in ref.spawn(3)]
    seq = g.bit_generator.seed_seq
    assert (seq.entropy, seq.spawn_key, seq.n_children_spawned) == (3, (name_key("x"),), 3)
    assert seq.generate_state(3).tolist() == ref.bit_generator.seed_seq.generate_state(3).tolist()
    # Asked again after seeding (the computed words are not kept), it answers as numpy does.
    want = ref.bit_generator.seed_seq.generate_state(4, np.uint64).tolist()
    assert seq.generate_state(4, np.uint64).tolist() == want
    g.random(5)
    back = pickle.loads(pickle.dumps(g))
    assert back.random(4).tolist() == g.random(4).tolist()
    assert isinstance(back.bit_generator.seed_seq, np.random.SeedSequence)
