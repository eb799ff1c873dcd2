"""Distance-learning models of Section IV-A (Figures 2c and 3c).

Symmetry: `SiameseResNet1D` is symmetric by construction, d(x1, x2) =
d(x2, x1) (both inputs go through the same encoder and the l2 distance is
symmetric; in training mode each input is normalised with its own batch
statistics, which swapping does not change). `DistanceResNet2D` is not: the
swapped pair feeds the transposed matrix `|x2_j - x1_i|`, and nothing in
ResNet2D ties its output on a matrix to its output on the transpose, so
d(x1, x2) != d(x2, x1) in general (the DTW targets it learns are symmetric,
so a trained model is only approximately symmetric). Average both orders if
exact symmetry is needed.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtl2d.models import norm as norm_lib
from mtl2d.models import resnet1d
from mtl2d.models import resnet2d

__all__ = ["DistanceResNet2D", "SiameseResNet1D", "pairwise_abs_distance"]


def pairwise_abs_distance(x1: jax.typing.ArrayLike, x2: jax.typing.ArrayLike) -> jax.Array:
  """Pairwise distance matrix between the points of two series (Figure 3c input).

  Args:
    x1: `[batch, n]`.
    x2: `[batch, m]`.

  Returns:
    `[batch, n, m]` with entry `|x1[b, i] - x2[b, j]|`.
  """
  x1 = jnp.asarray(x1)
  x2 = jnp.asarray(x2)
  if x1.ndim != 2 or x2.ndim != 2:
    raise ValueError(f"x1 and x2 must be [batch, length], got shapes {x1.shape}, {x2.shape}")
  if x1.shape[0] != x2.shape[0]:
    raise ValueError(f"x1 and x2 must have the same batch size, got {x1.shape[0]}, {x2.shape[0]}")
  return jnp.abs(x1[:, :, None] - x2[:, None, :])


def _safe_norm(v: jax.Array) -> jax.Array:
  # sqrt has an infinite derivative at 0; identical embeddings (x1 == x2) must
  # still give finite gradients, so take the 0 branch without touching sqrt(0).
  sq = jnp.sum(jnp.square(v), axis=-1)
  pos = sq > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


class SiameseResNet1D(nn.Module):
  """Siamese ResNet1D (Figure 2c): shared encoder -> linear -> l2 distance.

  Attributes:
    features: ResNet1D block widths.
    kernel_sizes: ResNet1D filter sizes.
    embed_dim: output size of the linear layer (paper: 128).
    dtype: computation dtype.
  """

  features: Sequence[int] = (64, 128, 128)
  kernel_sizes: Sequence[int] = (8, 5, 3)
  embed_dim: int = 128
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x1: jax.typing.ArrayLike, x2: jax.typing.ArrayLike, *,
               train: bool, mask: jax.typing.ArrayLike | None = None) -> jax.Array:
    """Predicts distances.

    Args:
      x1: `[batch, n]`.
      x2: `[batch, m]` (m may differ from n).
      train: batch statistics (True) or running averages (False).
      mask: `[batch]`; only nonzero pairs enter the batch statistics (None: all).

    Returns:
      `[batch]` float32 distances, symmetric in `(x1, x2)`.
    """
    x1 = jnp.asarray(x1)
    x2 = jnp.asarray(x2)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[0] != x2.shape[0]:
      raise ValueError(
          f"x1 and x2 must be [batch, n] and [batch, m] with one batch size, got shapes "
          f"{x1.shape}, {x2.shape}")
    encoder = resnet1d.ResNet1D(tuple(self.features), tuple(self.kernel_sizes), dtype=self.dtype,
                                name="encoder")
    linear = nn.Dense(self.embed_dim, dtype=jnp.float32, name="linear")
    e1 = linear(encoder(x1, train=train, mask=mask))
    e2 = linear(encoder(x2, train=train, mask=mask))
    return _safe_norm(e1 - e2)


class DistanceResNet2D(nn.Module):
  """ResNet2D distance model (Figure 3c): `|x1_i - x2_j|` matrix -> ResNet2D -> scalar.

  Not symmetric in its inputs (see the module docstring).

  Attributes:
    widths: ResNet2D stage widths.
    dtype: computation dtype.
    remat: per-stage rematerialisation in ResNet2D.
    conv: see `ResNet2D.conv`.
    norm: see `ResNet2D.norm`.
  """

  widths: Sequence[int] = resnet2d.DEFAULT_WIDTHS
  dtype: Any = jnp.float32
  remat: bool = False
  conv: resnet2d.ModuleDef = resnet2d.DEFAULT_CONV
  norm: resnet2d.ModuleDef = norm_lib.FoldedBatchNorm

  def __call__(self, x1: jax.typing.ArrayLike, x2: jax.typing.ArrayLike, *,
               train: bool, mask: jax.typing.ArrayLike | None = None) -> jax.Array:
    """Predicts distances.

    Args:
      x1: `[batch, n]`.
      x2: `[batch, m]`.
      train: batch statistics (True) or running averages (False).
      mask: `[batch]`; only nonzero pairs enter the batch statistics (None: all).

    Returns:
      `[batch]` float32 predicted distances.
    """
    return self.score_matrix(pairwise_abs_distance(x1, x2), train=train, mask=mask)

  @nn.compact
  def score_matrix(self, d: jax.typing.ArrayLike, *, train: bool,
                   mask: jax.typing.ArrayLike | None = None) -> jax.Array:
    """Scores a distance matrix directly (used by the Figure 4 perturbation maps).

    Use as `model.apply(variables, d, method=DistanceResNet2D.score_matrix,
    train=False)`; `__call__` is `score_matrix(pairwise_abs_distance(x1, x2))`.

    Args:
      d: `[batch, n, m]` pairwise distance matrices (k = 1 channel).
      train: batch statistics (True) or running averages (False).
      mask: `[batch]`; only nonzero examples enter the batch statistics (None: all).

    Returns:
      `[batch]` float32 scores.
    """
    d = jnp.asarray(d)
    if d.ndim != 3:
      raise ValueError(f"d must be [batch, n, m], got shape {d.shape}")
    features = resnet2d.ResNet2D(tuple(self.widths), dtype=self.dtype, remat=self.remat,
                                 conv=self.conv, norm=self.norm, name="resnet2d")(d[..., None],
                                                                            train=train,
                                                                            mask=mask)
    return nn.Dense(1, dtype=jnp.float32, name="head")(features)[:, 0]
