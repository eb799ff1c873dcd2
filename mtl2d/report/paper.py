"""The paper's published numbers, for side-by-side reports (Yeh et al., ICMLA 2023).

Only the accuracies printed in the paper are here (no data): Table I (25 UCR tasks, five methods)
and Table II (private merchant data, three tasks, three methods).
"""

from __future__ import annotations

__all__ = ["TABLE1_METHODS", "TABLE1", "TABLE1_AVERAGE_RANK", "TABLE2", "table1_results"]

# Column order of Table I, as method keys used by mtl2d.pipelines.comparison.
TABLE1_METHODS = ("1nn_dtw", "resnet1d", "resnet2d", "resnet1d_mtl", "resnet2d_mtl")

# (group, task, accuracies in TABLE1_METHODS order).
TABLE1 = (
    ('Cricket', 'CricketX', (0.80, 0.75, 0.80, 0.75, 0.95)),
    ('Cricket', 'CricketY', (0.78, 0.78, 0.71, 0.68, 0.76)),
    ('Cricket', 'CricketZ', (0.78, 0.78, 0.77, 0.75, 0.94)),
    ('UWaveGestureLibrary', 'UWaveGestureLibraryAll', (0.91, 0.90, 0.98, 0.82, 0.97)),
    ('UWaveGestureLibrary', 'UWaveGestureLibraryX', (0.77, 0.83, 0.86, 0.79, 0.85)),
    ('UWaveGestureLibrary', 'UWaveGestureLibraryY', (0.64, 0.73, 0.76, 0.69, 0.80)),
    ('UWaveGestureLibrary', 'UWaveGestureLibraryZ', (0.70, 0.78, 0.77, 0.75, 0.78)),
    ('AllGestureWiimote', 'AllGestureWiimoteX', (0.81, 0.79, 0.76, 0.69, 0.74)),
    ('AllGestureWiimote', 'AllGestureWiimoteY', (0.89, 0.90, 0.77, 0.74, 0.81)),
    ('AllGestureWiimote', 'AllGestureWiimoteZ', (0.74, 0.70, 0.64, 0.66, 0.68)),
    ('DodgerLoop', 'DodgerLoopDay', (0.53, 0.41, 0.53, 0.41, 0.50)),
    ('DodgerLoop', 'DodgerLoopGame', (0.97, 0.88, 0.97, 0.97, 0.94)),
    ('DodgerLoop', 'DodgerLoopWeekend', (1.00, 1.00, 1.00, 0.97, 1.00)),
    ('SemgHand', 'SemgHandGenderCh2', (0.84, 0.84, 0.86, 0.92, 0.99)),
    ('SemgHand', 'SemgHandMovementCh2', (0.62, 0.49, 0.65, 0.58, 0.83)),
    ('SemgHand', 'SemgHandSubjectCh2', (0.77, 0.74, 0.89, 0.83, 0.98)),
    ('GestureMidAir', 'GestureMidAirD1', (0.59, 0.54, 0.62, 0.50, 0.57)),
    ('GestureMidAir', 'GestureMidAirD2', (0.60, 0.47, 0.56, 0.60, 0.63)),
    ('GestureMidAir', 'GestureMidAirD3', (0.34, 0.22, 0.24, 0.31, 0.35)),
    ('ECG', 'ECG200', (0.82, 0.93, 0.90, 0.88, 0.93)),
    ('ECG', 'ECG5000', (0.94, 0.95, 0.95, 0.94, 0.95)),
    ('ECG', 'ECGFiveDays', (0.99, 1.00, 1.00, 1.00, 1.00)),
    ('ECG', 'NonInvasiveFetalECGThorax1', (0.80, 0.94, 0.89, 0.90, 0.88)),
    ('ECG', 'NonInvasiveFetalECGThorax2', (0.87, 0.94, 0.93, 0.92, 0.93)),
    ('ECG', 'TwoLeadECG', (1.00, 1.00, 1.00, 1.00, 1.00)),
)

# The last row of Table I.
TABLE1_AVERAGE_RANK = (3.20, 3.06, 2.70, 3.86, 2.18)

# Table II: method -> (category, region, online/offline) accuracy on the private merchant data.
TABLE2 = {
    "1nn_dtw": (0.2708, 0.4837, 0.6629),
    "resnet1d_mtl": (0.2767, 0.6977, 0.8388),
    "resnet2d_mtl": (0.3843, 0.7603, 0.8407),
}


def table1_results(tasks=None) -> tuple[dict[str, dict[str, float]], list[tuple[str, str]]]:
  """Table I as `(results, rows)` for `mtl2d.report.rank_methods`, optionally only `tasks`."""
  results = {m: {} for m in TABLE1_METHODS}
  rows = []
  for group, task, accs in TABLE1:
    if tasks is not None and task not in tasks:
      continue
    rows.append((group, task))
    for m, a in zip(TABLE1_METHODS, accs):
      results[m][task] = a
  return results, rows
