"""Result tables (ranks, CSV, Markdown) and figures (PNG) written by the experiments."""

from mtl2d.report.plots import embedding_scatter
from mtl2d.report.plots import error_boxplot
from mtl2d.report.plots import importance_grid
from mtl2d.report.plots import training_curves
from mtl2d.report.ranks import RankedTable
from mtl2d.report.ranks import rank_methods
from mtl2d.report.ranks import read_table_csv

__all__ = ["RankedTable", "embedding_scatter", "error_boxplot", "importance_grid",
           "rank_methods", "read_table_csv", "training_curves"]
