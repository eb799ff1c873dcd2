"""mtl2d: multitask time-series classification with 2D convolution, in JAX.

Subpackages and modules (import what you need; `import mtl2d` stays light):
  mtl2d.dtw        DTW / soft-DTW (lax.scan wavefront, custom VJP), paths, pairwise matrices.
  mtl2d.knn        1NN-DTW classifier with the window chosen on validation (mtl2d.dtw.knn;
                   LB_Kim/LB_Keogh in mtl2d.dtw.lower_bounds).
  mtl2d.data       UCR loading, the paper's groups, splits, TFDS builder, synthetic data.
  mtl2d.models     ResNet1D, TemplateDistance, ResNet2D, distance and multitask models.
  mtl2d.train      Algorithm 2 scheduler, train/eval steps, train_and_evaluate, checkpoints.
  mtl2d.estimators scikit-learn style ResNet1D/ResNet2D classifiers (w/ MTL) on your arrays.
  mtl2d.exported   runs exported models with JAX and NumPy only (imports no other mtl2d code).
  mtl2d.pipelines  one function per table/figure of the paper (used by experiments/).
  mtl2d.report     rank tables, CSV/Markdown, PNG figures; the paper's published numbers.
  mtl2d.analysis   pixel-perturbation importance maps, t-SNE and separation scores.
  mtl2d.bench      benchmarks: `python -m mtl2d.bench.dtw`, `mtl2d.bench.models`.
"""

__version__ = "0.1.0"
