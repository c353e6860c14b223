"""A Goertzel filter bank: the complex response of blocks of samples at a few chosen frequencies.

Goertzel's algorithm computes one DFT term at an arbitrary frequency with a per-sample
recurrence. In numpy that recurrence would be a Python loop over samples, so the bank computes
the same quantity, ``X(f) = sum_n x[n] exp(-2j pi f n / rate)``, as one matrix product of
many blocks with a precomputed table of complex exponentials: vectorised over blocks and
frequencies, a few microseconds per 20 ms frame.

Powers are scaled as *energies*: a sinusoid of amplitude A centred on a bank frequency gives
``A**2 * N / 2``, the energy it puts into an N-sample block, so ``power / block_energy`` is
the share of the block's energy at that frequency (1.0 for a pure tone).

The block length sets the resolution: a rectangular block of N samples has nulls every
``rate / N`` Hz, which is why DTMF detectors use about 105 samples at 8 kHz (the row and
column frequencies fall near each other's nulls) and call-progress tones, whose frequencies
sit 25-50 Hz apart, need longer blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 8000


class GoertzelBank:
    """The DFT terms of ``block_size``-sample blocks at ``frequencies`` (Hz)."""

    basis: np.ndarray  # (block_size, frequencies) complex exponentials
    real_basis: np.ndarray  # the same, real and imaginary parts interleaved: (block_size, 2 * frequencies)

    def __init__(self, frequencies: Sequence[float], block_size: int, sample_rate: int = SAMPLE_RATE) -> None:
        self.frequencies = np.asarray(frequencies, dtype=np.float64)
        self.block_size = block_size
        self.sample_rate = sample_rate
        self.omegas = 2 * np.pi * self.frequencies / sample_rate  # radians per sample
        n = np.arange(block_size)[:, None]
        basis = np.exp(-1j * n * self.omegas[None, :])  # (block_size, frequencies)
        # Real and imaginary parts interleaved, so that a real matrix product (no complex upcast of
        # the samples, no multithreaded BLAS call for a single block) reads back as complex.
        self.basis = basis
        self.real_basis = np.ascontiguousarray(basis.view(np.float64).reshape(block_size, 2 * len(self.frequencies)))
        self._real_basis_t = np.ascontiguousarray(self.real_basis.T)
        self._energy_basis = self.real_basis * np.sqrt(2.0 / block_size)

    def spectrum(self, blocks: np.ndarray) -> np.ndarray:
        """Complex response, shape ``(blocks, frequencies)``; phases refer to each block's first sample."""
        blocks = np.asarray(blocks, dtype=np.float64)
        if len(blocks) == 1:
            return (self._real_basis_t @ blocks[0]).view(np.complex128)[None, :]
        return (blocks @ self.real_basis).view(np.complex128)

    def power(self, blocks: np.ndarray) -> np.ndarray:
        """Energy of each frequency's component, shape ``(blocks, frequencies)``, on the scale of
        ``block_energy``."""
        terms = np.asarray(blocks, dtype=np.float64) @ self._energy_basis
        squares = terms * terms
        return squares[:, 0::2] + squares[:, 1::2]


def block_energy(blocks: np.ndarray) -> np.ndarray:
    """Sum of squares of each row."""
    blocks = np.asarray(blocks, dtype=np.float64)
    if len(blocks) == 1:  # the usual single frame: a dot product is cheaper
        return np.array([np.dot(blocks[0], blocks[0])])
    return np.einsum("ij,ij->i", blocks, blocks)


def dirichlet(delta: np.ndarray | float, block_size: int) -> np.ndarray:
    """``sum_{n<N} exp(1j * delta * n)``: what a unit complex tone ``delta`` rad/sample away from a
    bin puts into that bin's DFT term over N samples (N at ``delta == 0``)."""
    delta = np.asarray(delta, dtype=np.float64)
    half = delta / 2
    sin_half = np.sin(half)
    small = np.abs(sin_half) < 1e-9
    ratio = np.sin(half * block_size) / np.where(small, 1.0, sin_half)
    magnitude = np.where(small, float(block_size), ratio)
    return magnitude * np.exp(1j * half * (block_size - 1))
