"""What the experiment launchers run: one function per table or figure of the paper.

ablation         recipe variants of one method over groups and seeds (docs/ablations.md)
comparison       Table I (UCR groups) and Table II (transactions): methods x tasks, ranks
distance_approx  Fig. 1: DTW approximation error of the Siamese ResNet1D and ResNet2D
importance       Fig. 4: pixel-perturbation importance maps with the DTW path
embedding        Fig. 5: t-SNE of the shared features of the two MTL models
"""

from mtl2d.pipelines.ablation import run_ablation
from mtl2d.pipelines.comparison import METHODS
from mtl2d.pipelines.comparison import collect_table
from mtl2d.pipelines.comparison import combine_comparisons
from mtl2d.pipelines.comparison import run_comparison
from mtl2d.pipelines.comparison import run_nn_dtw
from mtl2d.pipelines.comparison import run_paper_groups
from mtl2d.pipelines.comparison import summarize_seeds
from mtl2d.pipelines.comparison import write_diagnostics
from mtl2d.pipelines.distance_approx import run_distance_approx
from mtl2d.pipelines.embedding import run_tsne
from mtl2d.pipelines.importance import run_importance

__all__ = ["METHODS", "collect_table", "combine_comparisons", "run_ablation", "run_comparison",
           "run_distance_approx", "run_importance", "run_nn_dtw", "run_paper_groups", "run_tsne",
           "summarize_seeds", "write_diagnostics"]
