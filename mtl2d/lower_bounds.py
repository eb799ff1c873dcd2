"""Lower bounds of DTW (`mtl2d.dtw.lower_bounds`), kept importable as `mtl2d.lower_bounds`.

The code lives in the DTW package beside the band it bounds; this module re-exports its public
names so that `from mtl2d import lower_bounds` keeps working.
"""

from mtl2d.dtw.lower_bounds import band_intervals
from mtl2d.dtw.lower_bounds import envelope
from mtl2d.dtw.lower_bounds import lb_keogh
from mtl2d.dtw.lower_bounds import lb_keogh_from_envelope
from mtl2d.dtw.lower_bounds import lb_kim

__all__ = ["band_intervals", "envelope", "lb_keogh", "lb_keogh_from_envelope", "lb_kim"]
