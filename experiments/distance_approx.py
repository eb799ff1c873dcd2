r"""Fig. 1: DTW approximation error of the Siamese ResNet1D and ResNet2D per warping window.

  python -m experiments.distance_approx --workdir=runs/fig1_quick
  python -m experiments.distance_approx --workdir=runs/fig1 \
      --config=experiments/configs/distance_approx.py:paper
"""

from absl import app

from experiments import _launch
from mtl2d import pipelines

_FLAGS = _launch.define_flags("distance_approx.py", wait_for_lock=True)


def main(argv):
  _launch.run(argv, _FLAGS, pipelines.run_distance_approx, "errors.md")


if __name__ == "__main__":
  app.run(main)
