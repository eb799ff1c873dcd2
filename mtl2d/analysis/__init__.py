"""Model analysis: pixel-perturbation importance (Fig. 4) and feature embeddings (Fig. 5)."""

from mtl2d.analysis.embedding import knn_agreement
from mtl2d.analysis.embedding import tsne_2d
from mtl2d.analysis.perturbation import path_importance_ratio
from mtl2d.analysis.perturbation import path_mask
from mtl2d.analysis.perturbation import perturbation_importance

__all__ = ["knn_agreement", "path_importance_ratio", "path_mask", "perturbation_importance",
           "tsne_2d"]
