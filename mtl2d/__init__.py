"""mtl2d: multitask time-series classification with 2D convolution, in JAX.

Subpackages:
  mtl2d.dtw      DTW / soft-DTW recursions (lax.scan wavefront), paths, pairwise matrices.
  mtl2d.data     UCR loading, the paper's groups, splits, TFDS builder, synthetic data.
  mtl2d.models   ResNet1D, TemplateDistance, ResNet2D, distance and multitask models.
  mtl2d.train    Algorithm 2 scheduler, train/eval steps, train_and_evaluate, checkpoints.
"""

__version__ = "0.1.0"
