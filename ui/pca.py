"""A 2-D map of embeddings by PCA (numpy SVD): enough to see clusters and where a query lands.

The map is fitted on the memories alone, and a query is placed on it with the
same axes, so asking another question never moves the memories; the axes'
signs are fixed by the data, so the same memories always draw the same map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    mean: np.ndarray
    components: np.ndarray  # (2, dimensions); zero rows where the data has no spread

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        if len(vectors) == 0:
            return np.zeros((0, 2))
        return (np.asarray(vectors, dtype=np.float64) - self.mean) @ self.components.T


def fit_2d(vectors: np.ndarray) -> Projection:
    """The first two principal components of ``vectors``, each signed so its largest coordinate is positive."""
    data = np.asarray(vectors, dtype=np.float64)
    dims = data.shape[1] if data.ndim == 2 else 0
    mean = data.mean(axis=0) if len(data) else np.zeros(dims)
    components = np.zeros((2, dims))
    centred = data - mean
    if len(data) >= 2 and np.any(centred):
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        for i, axis in enumerate(vt[:2]):
            coords = centred @ axis
            components[i] = axis if coords[np.argmax(np.abs(coords))] >= 0 else -axis
    return Projection(mean, components)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project rows onto their own first two principal components (zeros where there is no spread)."""
    if len(vectors) == 0:
        return np.zeros((0, 2))
    return fit_2d(vectors)(vectors)
