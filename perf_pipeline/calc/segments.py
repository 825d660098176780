"""Segment reductions and fills over the time axis of dates x entities matrices."""

from __future__ import annotations

import numpy as np


def sum_columns_by_group(matrix: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the columns of a (T, N) matrix into (T, n_groups) by integer group code.

    Column j is added into output column groups[j]; groups with no column are all 0. One
    reduceat pass over the columns sorted by group: no loop per group.
    """
    out = np.zeros((matrix.shape[0], n_groups), dtype=float)
    if matrix.shape[1] == 0:
        return out
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    present, starts = np.unique(sorted_groups, return_index=True)
    out[:, present] = np.add.reduceat(matrix[:, order], starts, axis=1)
    return out


def scatter_add(
    n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """A (n_rows, n_cols) matrix of zeros with values[k] added at (rows[k], cols[k])."""
    flat = np.bincount(rows * n_cols + cols, weights=values, minlength=n_rows * n_cols)
    return flat.reshape(n_rows, n_cols)


def forward_fill_positions(valid: np.ndarray) -> np.ndarray:
    """For each cell of a (T, N) mask, the row of the last valid cell at or above it, or -1."""
    rows = np.where(valid, np.arange(valid.shape[0])[:, None], -1)
    return np.maximum.accumulate(rows, axis=0)


def gather_rows(matrix: np.ndarray, rows: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """matrix[rows[t, j], j] for every cell; `fill` where rows is -1."""
    picked = np.take_along_axis(matrix, np.maximum(rows, 0), axis=0)
    return np.where(rows >= 0, picked, fill)


def ranges_to_indices(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten the integer ranges [starts[k], stops[k]) into (range number, index) pairs."""
    counts = np.maximum(stops - starts, 0)
    owner = np.repeat(np.arange(len(starts)), counts)
    offsets = np.cumsum(counts) - counts
    index = np.arange(counts.sum()) - np.repeat(offsets, counts) + np.repeat(starts, counts)
    return owner, index
