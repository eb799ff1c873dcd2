import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import models


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _param_count(model, *args):
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *args, train=False))
  return _count(shapes["params"])


def test_paper_parameter_counts():
  x = jnp.zeros((2, 945))
  heads = lambda f: 2 * (f * 5 + 5)  # noqa: E731  two tasks, 5 classes max
  assert _param_count(models.classifier("resnet1d", (3, 5)), x, 0) == 502_592 + heads(128)
  # Templates 512 x 64 + ResNet2D on 64 channels.
  assert _param_count(models.classifier("resnet2d", (3, 5)), x, 0) == (
      512 * 64 + 2_151_168 + heads(128))
  # Siamese: ResNet1D + linear 128 -> 128.
  assert _param_count(models.distance_model("siamese_resnet1d"), x, x) == 502_592 + 128 * 129
  # ResNet2D on the 1-channel matrix + linear 128 -> 1.
  assert _param_count(models.distance_model("distance_resnet2d"), x, x) == 2_115_072 + 129


def test_presets_and_overrides():
  model = models.classifier("resnet2d", (4,), preset="quick", remat=True, dtype="bfloat16")
  assert model.encoder.remat and model.encoder.num_templates == 8
  assert model.encoder.dtype == jnp.bfloat16 and model.dtype == jnp.bfloat16
  assert models.preset_config("resnet2d", "paper")["template_length"] == 512
  assert models.distance_model("siamese_resnet1d", preset="tiny", embed_dim=3).embed_dim == 3


@pytest.mark.parametrize("call,match", [
    (lambda: models.classifier("resnet3d", (2,)), "resnet1d"),
    (lambda: models.classifier("resnet1d", (2,), preset="huge"), "paper"),
    (lambda: models.classifier("resnet1d", (2,), widths=(4,)), "kernel_sizes"),
    (lambda: models.classifier("resnet1d", ()), "num_classes"),
    (lambda: models.classifier("resnet1d", (2,), dtype="float77"), "dtype"),
    (lambda: models.distance_model("dtw"), "siamese_resnet1d"),
])
def test_bad_names_list_valid_ones(call, match):
  with pytest.raises(ValueError, match=match):
    call()
