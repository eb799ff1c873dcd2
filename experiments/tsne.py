r"""Fig. 5: t-SNE of the shared features learned by the two multitask models.

  python -m experiments.tsne --workdir=runs/fig5_quick
  python -m experiments.tsne --workdir=runs/fig5 \
      --config.runs_workdir=runs/table1_quick --config.runs_subdir=synthetic
"""

from absl import app

from experiments import _launch
from mtl2d import pipelines

_FLAGS = _launch.define_flags("tsne.py")


def main(argv):
  _launch.run(argv, _FLAGS, pipelines.run_tsne, "tsne.md")


if __name__ == "__main__":
  app.run(main)
