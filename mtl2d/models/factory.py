"""Model presets: "paper" (Section III sizes), "quick" (CPU runs), "tiny" (tests).

`classifier("resnet2d", num_classes=(3, 5))` builds ResNet2D w/ MTL
(Figure 3d); `distance_model("distance_resnet2d")` the Figure 3c model.
Overrides replace single preset fields, e.g.
`classifier("resnet2d", (3,), preset="paper", remat=True, dtype="bfloat16")`.

Sizes:
  paper: ResNet1D 64/128/128 with filters 8/5/3 (Figure 2b); k = 64 templates
    of length m = 512 (Section III-B); ResNet2D widths
    `resnet2d.DEFAULT_WIDTHS`; linear 128 for the Siamese model.
  quick: ResNet1D 32/64/64; k = 8 templates of length 32; ResNet2D widths
    16 x 4 then 32 x 4. A ResNet2D MTL train step on batch 40, length 128 runs
    in a fraction of a second on a 2-core CPU (see experiments/benchmark.py).
  tiny: for tests; each step takes milliseconds.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from mtl2d.models import distance
from mtl2d.models import multitask
from mtl2d.models import resnet1d
from mtl2d.models import resnet2d

__all__ = ["CLASSIFIER_ENCODERS", "DISTANCE_MODELS", "PRESETS", "classifier", "distance_model",
           "preset_config"]

CLASSIFIER_ENCODERS = ("resnet1d", "resnet2d")
DISTANCE_MODELS = ("siamese_resnet1d", "distance_resnet2d")

# Fields per model family; overrides may set exactly these.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "resnet1d": dict(features=(64, 128, 128), kernel_sizes=(8, 5, 3)),
        "resnet2d": dict(num_templates=64, template_length=512, widths=resnet2d.DEFAULT_WIDTHS,
                         remat=False, template_init="random_walk", recompute_distance=True,
                         conv_impl="auto", downsample=None),
        "siamese_resnet1d": dict(features=(64, 128, 128), kernel_sizes=(8, 5, 3), embed_dim=128),
        "distance_resnet2d": dict(widths=resnet2d.DEFAULT_WIDTHS, remat=False, conv_impl="auto"),
    },
    "quick": {
        "resnet1d": dict(features=(32, 64, 64), kernel_sizes=(8, 5, 3)),
        "resnet2d": dict(num_templates=8, template_length=32, widths=(16,) * 4 + (32,) * 4,
                         remat=False, template_init="random_walk", recompute_distance=True,
                         conv_impl="auto", downsample=None),
        "siamese_resnet1d": dict(features=(32, 64, 64), kernel_sizes=(8, 5, 3), embed_dim=64),
        "distance_resnet2d": dict(widths=(16,) * 4 + (32,) * 4, remat=False, conv_impl="auto"),
    },
    "tiny": {
        "resnet1d": dict(features=(4, 8, 8), kernel_sizes=(8, 5, 3)),
        "resnet2d": dict(num_templates=2, template_length=6, widths=(4,) * 4 + (8,) * 4,
                         remat=False, template_init="random_walk", recompute_distance=True,
                         conv_impl="auto", downsample=None),
        "siamese_resnet1d": dict(features=(4, 8, 8), kernel_sizes=(8, 5, 3), embed_dim=8),
        "distance_resnet2d": dict(widths=(4,) * 4 + (8,) * 4, remat=False, conv_impl="auto"),
    },
}


def preset_config(name: str, preset: str = "paper", **overrides: Any) -> dict[str, Any]:
  """Fields of model family `name` in `preset`, with `overrides` applied.

  Args:
    name: one of `CLASSIFIER_ENCODERS + DISTANCE_MODELS`.
    preset: `"paper"`, `"quick"` or `"tiny"`.
    **overrides: replacements for single fields.

  Returns:
    A new dict of fields.
  """
  if preset not in PRESETS:
    raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
  fields = PRESETS[preset]
  if name not in fields:
    raise ValueError(f"model name must be one of {sorted(fields)}, got {name!r}")
  config = dict(fields[name])
  unknown = sorted(set(overrides) - set(config))
  if unknown:
    raise ValueError(
        f"unknown override(s) {unknown} for {name!r}; valid keys: {sorted(config)} and dtype")
  config.update(overrides)
  return config


def _dtype(dtype: Any) -> Any:
  try:
    return jnp.dtype(dtype).type
  except TypeError as e:
    raise ValueError(f"dtype must be a JAX dtype or its name, got {dtype!r}") from e


def classifier(encoder: str, num_classes: Sequence[int], *, preset: str = "paper",
               dtype: Any = jnp.float32, head_dropout: float = 0.0,
               task_batch_stats: bool = False,
               **overrides: Any) -> multitask.MultiTaskModel:
  """Builds ResNet1D / ResNet2D with stacked task heads (Figures 2d and 3d).

  Args:
    encoder: `"resnet1d"` or `"resnet2d"` (templates + ResNet2D).
    num_classes: class count per task; one entry gives the single-task model.
    preset: `"paper"`, `"quick"` or `"tiny"`.
    dtype: computation dtype (`jnp.bfloat16` or `"bfloat16"` on
      accelerators); parameters stay float32.
    head_dropout: dropout rate on the shared features before the heads.
    task_batch_stats: one set of batch-norm running statistics per task in the encoder
      (`mtl2d.models.norm.BatchNorm.num_tasks`); scale and bias stay shared.
    **overrides: preset fields to replace (see `PRESETS`).

  Returns:
    An unbound `MultiTaskModel`.
  """
  if encoder not in CLASSIFIER_ENCODERS:
    raise ValueError(f"encoder must be one of {list(CLASSIFIER_ENCODERS)}, got {encoder!r}")
  num_classes = tuple(num_classes)
  if not num_classes or any(int(c) != c or c < 1 for c in num_classes):
    raise ValueError(f"num_classes must be a non-empty sequence of ints >= 1, got {num_classes!r}")
  config = preset_config(encoder, preset, **overrides)
  dtype = _dtype(dtype)
  num_tasks = len(num_classes) if task_batch_stats else 1
  enc: nn.Module
  if encoder == "resnet1d":
    enc = resnet1d.ResNet1D(tuple(config["features"]), tuple(config["kernel_sizes"]), dtype=dtype,
                            num_tasks=num_tasks)
  else:
    enc = resnet2d.TemplateResNet2D(
        num_templates=config["num_templates"], template_length=config["template_length"],
        widths=tuple(config["widths"]), dtype=dtype, remat=config["remat"],
        template_init=config["template_init"], recompute_distance=config["recompute_distance"],
        conv_impl=config["conv_impl"], downsample=config["downsample"], num_tasks=num_tasks)
  return multitask.MultiTaskModel(enc, tuple(int(c) for c in num_classes), dtype=dtype,
                                 dropout=float(head_dropout))


def distance_model(name: str, *, preset: str = "paper", dtype: Any = jnp.float32,
                   **overrides: Any) -> nn.Module:
  """Builds a distance-learning model (Figures 2c and 3c).

  Args:
    name: `"siamese_resnet1d"` or `"distance_resnet2d"`.
    preset: `"paper"`, `"quick"` or `"tiny"`.
    dtype: computation dtype.
    **overrides: preset fields to replace (see `PRESETS`).

  Returns:
    An unbound `SiameseResNet1D` or `DistanceResNet2D`.
  """
  if name not in DISTANCE_MODELS:
    raise ValueError(f"name must be one of {list(DISTANCE_MODELS)}, got {name!r}")
  config = preset_config(name, preset, **overrides)
  dtype = _dtype(dtype)
  if name == "siamese_resnet1d":
    return distance.SiameseResNet1D(tuple(config["features"]), tuple(config["kernel_sizes"]),
                                    embed_dim=config["embed_dim"], dtype=dtype)
  return distance.DistanceResNet2D(tuple(config["widths"]), dtype=dtype, remat=config["remat"],
                                   conv_impl=config["conv_impl"])
