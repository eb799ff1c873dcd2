import numpy as np

from mtl2d.report import plots


def _is_png(path):
  return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_are_written(tmp_path):
  rng = np.random.default_rng(0)
  p1 = plots.error_boxplot({"full": {"a": rng.uniform(size=9), "b": rng.uniform(size=9)},
                            "10%": {"a": rng.uniform(size=9)}}, tmp_path / "box.png")
  p2 = plots.importance_grid([rng.uniform(size=(6, 6))] * 3,
                             [np.stack([np.arange(6)] * 2, 1)] * 3, tmp_path / "maps.png",
                             titles=["x", "y", "z"])
  p3 = plots.embedding_scatter({"m": (rng.normal(size=(10, 2)), np.arange(10) % 2, ["f", "m"])},
                               tmp_path / "tsne.png")
  assert all(_is_png(p) for p in (p1, p2, p3))
