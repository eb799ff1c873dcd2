"""ResNet1D / ResNet2D (with or without multitask learning) on your own arrays, scikit-learn style.

classifiers   ResNet1DClassifier, ResNet2DClassifier, MultiTaskClassifier, load
fitting       arrays -> Tasks -> mtl2d.train.train_and_evaluate -> best checkpoints
persistence   save / load of fitted estimators, jax.export of their inference

Exported models are read by `mtl2d.exported`, which needs only JAX and NumPy.
"""

from mtl2d.estimators.classifiers import MultiTaskClassifier
from mtl2d.estimators.classifiers import ResNet1DClassifier
from mtl2d.estimators.classifiers import ResNet2DClassifier
from mtl2d.estimators.classifiers import load

__all__ = ["MultiTaskClassifier", "ResNet1DClassifier", "ResNet2DClassifier", "load"]
