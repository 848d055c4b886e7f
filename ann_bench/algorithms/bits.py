"""Bit vectors (hamming data) for the wrappers: packing and exact popcount distances.

A hamming dataset's points are rows of `dimension` bits, as bool or 0/1 integer arrays (any
non-zero value is a 1). Libraries want them packed: `pack_bits` gives uint8 codes, eight bits
per byte, first bit in the high bit of the first byte (np.packbits' order, which faiss's
binary indexes read), and `pack_words` the same bits in uint64 words. The padding up to a
whole byte or word is zero bits in every point and every query, so it changes no distance.
"""

from __future__ import annotations

import numpy as np


def as_bits(X) -> np.ndarray:
    """X as a bool array (a view when X is already bool; never written to)."""
    X = np.asarray(X)
    return X if X.dtype == np.bool_ else X != 0


def pack_bits(X) -> np.ndarray:
    """uint8 codes (n, ceil(d / 8)) of a (n, d) bit array; a 1-D point gives one row."""
    bits = as_bits(X)
    if bits.ndim == 1:
        bits = bits.reshape(1, -1)
    return np.packbits(bits, axis=1)  # a new array, zero-padded to whole bytes


def pack_words(X) -> np.ndarray:
    """uint64 words (n, ceil(d / 64)) of a (n, d) bit array, zero-padded to whole words."""
    codes = pack_bits(X)
    n, n_bytes = codes.shape
    n_words = -(-n_bytes // 8)
    padded = np.zeros((n, n_words * 8), dtype=np.uint8)
    padded[:, :n_bytes] = codes
    return padded.view(np.uint64)


def hamming_to_all(words: np.ndarray, q_words: np.ndarray) -> np.ndarray:
    """Hamming distances (int) from the packed queries (m, w) to every packed point (n, w):
    shape (m, n). The popcount of the XOR, exact; one word column at a time, so the
    temporaries stay (m, n) whatever the width."""
    out = np.zeros((len(q_words), len(words)), dtype=np.int32)
    xor = np.empty(out.shape, dtype=np.uint64)
    counts = np.empty(out.shape, dtype=np.uint8)
    for j in range(words.shape[1]):
        np.bitwise_xor(q_words[:, j, None], words[None, :, j], out=xor)
        np.bitwise_count(xor, out=counts)
        out += counts
    return out
