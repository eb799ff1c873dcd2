"""Dynamic time warping (DTW) and soft-DTW in JAX (see `mtl2d.dtw._dtw` for the conventions)."""

from mtl2d.dtw._dtw import BANDS
from mtl2d.dtw._dtw import band_mask
from mtl2d.dtw._dtw import cdist_dtw
from mtl2d.dtw._dtw import cdist_soft_dtw
from mtl2d.dtw._dtw import dtw
from mtl2d.dtw._dtw import dtw_from_cost
from mtl2d.dtw._dtw import dtw_path
from mtl2d.dtw._dtw import soft_dtw
from mtl2d.dtw._dtw import soft_dtw_divergence
from mtl2d.dtw._dtw import soft_dtw_from_cost
from mtl2d.dtw._dtw import window_from_fraction
from mtl2d.dtw._dtw import window_from_name

__all__ = [
    "BANDS",
    "band_mask",
    "cdist_dtw",
    "cdist_soft_dtw",
    "dtw",
    "dtw_from_cost",
    "dtw_path",
    "soft_dtw",
    "soft_dtw_divergence",
    "soft_dtw_from_cost",
    "window_from_fraction",
    "window_from_name",
]
