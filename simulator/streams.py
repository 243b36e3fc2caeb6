"""Named random streams: one root seed, each stream derived from it and its *name*.

The stream called ``name`` under root seed ``seed`` is
``Generator(PCG64(SeedSequence(seed, spawn_key=(blake2b64(name),))))``. It depends on the
seed and the name only, never on creation order (``SeedSequence.spawn`` does depend on call
order, and numpy's docs call ``seed + i`` unsafe), so adding a component never shifts another's
numbers, and two arms of a comparison that use the same names share random numbers.

Speed: building that ``SeedSequence`` and seeding ``PCG64`` from it costs ~30 us, and a world of
10,000 servers makes one service stream per server. :func:`named_rng` therefore computes the
same seed words itself: numpy's SeedSequence (``numpy/random/bit_generator.pyx``, after
O'Neill's ``seed_seq_fe``) mixes the root seed's words (padded to its pool of 4) first and the
spawn key's words last, so the pool after the seed's words is one value per seed (cached), and
each name adds only its key's two words. The generator is then seeded with exactly the words
``SeedSequence.generate_state(4, uint64)`` returns (tests/test_streams.py compares states
with numpy's own construction). ``rng.bit_generator.seed_seq`` stands in for the real
``SeedSequence`` (built on first use of anything but those words: ``spawn``, ``entropy``, pickling).

This module sits below :mod:`simulator.core` so that the parts ``Simulation`` assembles
(e.g. :func:`simulator.faults.random_nemesis`) can derive streams without importing it.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
from numpy.random.bit_generator import ISpawnableSeedSequence

# SeedSequence's constants (numpy/random/bit_generator.pyx, from seed_seq_fe).
_M32 = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4


def name_key(name: str) -> int:
    """A stable 64-bit key for a stream name (never Python's salted ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def _words(v: int) -> list[int]:
    """An integer as little-endian 32-bit words (``_int_to_uint32_array``: 0 is ``[0]``)."""
    out = [v & _M32]
    v >>= 32
    while v:
        out.append(v & _M32)
        v >>= 32
    return out


def _hashmix_consts(h: int, mult: int, n: int) -> tuple[int, ...]:
    """The hash constant before each of ``n`` successive hashmix steps, and after the last: it
    depends only on how many steps came before, never on the words hashed."""
    out = [h]
    for _ in range(n):
        h = (h * mult) & _M32
        out.append(h)
    return tuple(out)


def _mix_word(pool: list[int], hs: tuple[int, ...], at: int, w: int) -> None:
    """Mix one more entropy word into every pool word (``mix_entropy``'s last loop), with the
    hash constants ``hs[at:at + 5]`` (``hashmix(w)`` is ``((w ^ h) * h') ^ >> 16``)."""
    for i in range(_POOL):
        v = ((w ^ hs[at + i]) * hs[at + i + 1]) & _M32
        r = (_MIX_L * pool[i] - _MIX_R * (v ^ (v >> 16))) & _M32
        pool[i] = r ^ (r >> 16)


def _pack4(a: int, b: int, c: int, d: int) -> np.ndarray:
    """Four 64-bit words as a (read-only) uint64 array: packing bytes is ~3x quicker than
    ``np.array`` of Python ints (PCG64 only reads it)."""
    return np.frombuffer(_PACK4(a, b, c, d), dtype=np.uint64)


_PACK4 = struct.Struct("=4Q").pack  # native order: the array's dtype is native uint64
_prefixes: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
# generate_state's hash constants: before and after each of its 8 steps (4 words of 64 bits).
_GEN = _hashmix_consts(_INIT_B, _MULT_B, 8)


def _prefix(seed: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The pool after the root seed's words (the same for every name) and the hash constants
    the name's (at most two) key words will be mixed with."""
    got = _prefixes.get(seed)
    if got is not None:
        return got
    ent = _words(seed)
    ent += [0] * (_POOL - len(ent))  # padded to the pool size when a spawn key follows
    h, pool = _INIT_A, []
    for i in range(_POOL):
        v = ent[i] ^ h
        h = (h * _MULT_A) & _M32
        v = (v * h) & _M32
        pool.append(v ^ (v >> 16))
    for s in range(_POOL):
        for d in range(_POOL):
            if s != d:
                v = pool[s] ^ h
                h = (h * _MULT_A) & _M32
                v = (v * h) & _M32
                v ^= v >> 16
                r = (_MIX_L * pool[d] - _MIX_R * v) & _M32
                pool[d] = r ^ (r >> 16)
    for w in ent[_POOL:]:
        hs = _hashmix_consts(h, _MULT_A, _POOL)
        _mix_word(pool, hs, 0, w)
        h = hs[-1]
    got = _prefixes[seed] = (tuple(pool), _hashmix_consts(h, _MULT_A, 2 * _POOL))
    return got


class _NamedSeed(ISpawnableSeedSequence):
    """``SeedSequence(seed, spawn_key=(key,))``'s first four 64-bit words, computed here; the real
    SeedSequence is made on first need of anything else (and is what pickling stores)."""

    __slots__ = ("seed", "key", "_state", "_real")

    def __init__(self, seed: int, key: int) -> None:
        self.seed, self.key, self._real = seed, key, None
        if not 0 <= key < 1 << 64:
            raise ValueError(f"key must be a 64-bit stream key (name_key), got {key!r}")
        # _mix_word for the key's (one or two) words and generate_state's 8 hashmix steps,
        # unrolled into locals: this runs once per stream (a world of 10,000 servers makes 10,000
        # service streams), and the loops and calls were most of its cost.
        (p0, p1, p2, p3), (h0, h1, h2, h3, h4, h5, h6, h7, h8) = _prefix(seed)
        m, ml, mr = _M32, _MIX_L, _MIX_R
        for w, a, b, c, d, e in ((key & m, h0, h1, h2, h3, h4), (key >> 32, h4, h5, h6, h7, h8)):
            v = ((w ^ a) * b) & m
            r = (ml * p0 - mr * (v ^ (v >> 16))) & m
            p0 = r ^ (r >> 16)
            v = ((w ^ b) * c) & m
            r = (ml * p1 - mr * (v ^ (v >> 16))) & m
            p1 = r ^ (r >> 16)
            v = ((w ^ c) * d) & m
            r = (ml * p2 - mr * (v ^ (v >> 16))) & m
            p2 = r ^ (r >> 16)
            v = ((w ^ d) * e) & m
            r = (ml * p3 - mr * (v ^ (v >> 16))) & m
            p3 = r ^ (r >> 16)
            if not key >> 32:  # a key below 2**32 is one word (numpy's _int_to_uint32_array)
                break
        g0, g1, g2, g3, g4, g5, g6, g7, g8 = _GEN  # generate_state: 8 words of 32 bits, paired
        o0 = ((p0 ^ g0) * g1) & m                   # little-endian into 4 of 64
        o1 = ((p1 ^ g1) * g2) & m
        o2 = ((p2 ^ g2) * g3) & m
        o3 = ((p3 ^ g3) * g4) & m
        o4 = ((p0 ^ g4) * g5) & m
        o5 = ((p1 ^ g5) * g6) & m
        o6 = ((p2 ^ g6) * g7) & m
        o7 = ((p3 ^ g7) * g8) & m
        self._state = _pack4(o0 ^ (o0 >> 16) | (o1 ^ (o1 >> 16)) << 32, o2 ^ (o2 >> 16) | (o3 ^ (o3 >> 16)) << 32,
                             o4 ^ (o4 >> 16) | (o5 ^ (o5 >> 16)) << 32, o6 ^ (o6 >> 16) | (o7 ^ (o7 >> 16)) << 32)

    def real(self) -> np.random.SeedSequence:
        r = self._real
        if r is None:
            r = self._real = np.random.SeedSequence(self.seed, spawn_key=(self.key,))
        return r

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        st = self._state
        if st is not None and n_words == 4 and np.dtype(dtype) == np.uint64:
            self._state = None  # PCG64 asks once, when seeded: don't keep 144 bytes per stream for it
            return st
        return self.real().generate_state(n_words, dtype)

    def spawn(self, n_children: int) -> list[np.random.SeedSequence]:
        return self.real().spawn(n_children)

    def __getattr__(self, attr: str):  # entropy, spawn_key, pool, state, n_children_spawned
        return getattr(self.real(), attr)

    def __reduce__(self):
        return self.real().__reduce__()

    def __repr__(self) -> str:
        return repr(self.real())


def named_rng(seed: int, name: str) -> np.random.Generator:
    """A fresh generator of the stream called ``name`` under the root seed ``seed``: the same as
    ``Generator(PCG64(SeedSequence(seed, spawn_key=(name_key(name),))))``, ~4x faster."""
    return np.random.Generator(np.random.PCG64(_NamedSeed(seed, name_key(name))))
