"""1NN-DTW (`mtl2d.dtw.knn`), kept importable as `mtl2d.knn`.

The code lives in the DTW package beside the bounds and kernels it searches with; this module
re-exports its public names so that `from mtl2d import knn` keeps working. Patch attributes on
`mtl2d.dtw.knn`, the module whose functions read them.
"""

from mtl2d.dtw.knn import AUTO_SEARCH_CELLS
from mtl2d.dtw.knn import METHODS
from mtl2d.dtw.knn import NNSearchResult
from mtl2d.dtw.knn import nn_dtw_predict
from mtl2d.dtw.knn import nn_dtw_search
from mtl2d.dtw.knn import select_window

__all__ = ["AUTO_SEARCH_CELLS", "METHODS", "NNSearchResult", "nn_dtw_predict", "nn_dtw_search",
           "select_window"]
