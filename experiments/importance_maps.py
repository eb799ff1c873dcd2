r"""Fig. 4: where a trained DistanceResNet2D looks in the pairwise distance matrix.

  python -m experiments.importance_maps --workdir=runs/fig4_quick
  python -m experiments.importance_maps --workdir=runs/fig4 \
      --config.model_workdir=runs/fig1_quick/distance_resnet2d/10pct
"""

from absl import app

from experiments import _launch
from mtl2d import pipelines

_FLAGS = _launch.define_flags("importance_maps.py")


def main(argv):
  _launch.run(argv, _FLAGS, pipelines.run_importance, "importance.md")


if __name__ == "__main__":
  app.run(main)
