"""Model registry and presets: "paper" (Section III sizes), "quick" (CPU runs), "tiny" (tests).

Models are chosen by name from a registry (`register`, `lookup`): each entry is a flax module
class and its kind, "encoder" (the shared encoder of a classifier, `[B, L] -> [B, F]`) or
"distance" (a distance-learning model of a pair of series). A model's *fields* are its
constructor fields less those the engine sets (`dtype`, `num_tasks`); a preset names a value
for each of them, and a trained run records the fields it was built with, so that it can be
rebuilt whatever the presets say later (`classifier(..., fields=...)`). Adding a model is one
module and one `register` line (plus its preset fields).

`classifier("resnet2d", num_classes=(3, 5))` builds ResNet2D w/ MTL
(Figure 3d); `distance_model("distance_resnet2d")` the Figure 3c model.
Overrides replace single preset fields, e.g.
`classifier("resnet2d", (3,), preset="paper", remat=True, dtype="bfloat16")`.

Sizes:
  paper: ResNet1D 64/128/128 with filters 8/5/3 (Figure 2b); k = 64 templates
    of length m = 512 (Section III-B); ResNet2D widths
    `resnet2d.DEFAULT_WIDTHS`; linear 128 for the Siamese model.
  quick: ResNet1D 32/64/64; k = 8 templates of length 32 (the UCR CPU recipe of
    experiments/configs/ucr_mtl.py raises k to 16); ResNet2D widths
    16 x 4 then 32 x 4. A ResNet2D MTL train step on batch 40, length 128 runs
    in a fraction of a second on a 2-core CPU (see experiments/benchmark.py).
  tiny: for tests; each step takes milliseconds.
"""

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from mtl2d.models import conv as conv_lib
from mtl2d.models import distance
from mtl2d.models import multitask
from mtl2d.models import resnet1d
from mtl2d.models import resnet2d

__all__ = ["CLASSIFIER_ENCODERS", "DISTANCE_MODELS", "KINDS", "ModelEntry", "PRESETS",
           "classifier", "distance_model", "lookup", "preset_config", "register", "registered"]

KINDS = ("encoder", "distance")
# Constructor fields set by the builders below, not by presets or recorded fields (flax's
# `parent` and `name` included).
_ENGINE_FIELDS = frozenset({"dtype", "num_tasks", "parent", "name"})
# Fields that take a flax `ModuleDef` (flax's pattern for injecting the conv and the norm). A
# config cannot hold code, so these are set in code, or through a recorded string `setting`
# (`ModelEntry.settings`, e.g. `conv_impl="xla"` -> `conv=conv_lib.conv_module("xla")`).
_MODULE_FIELDS = frozenset({"conv", "norm"})

# How the ResNet2D models' convolution is named in configs and recorded runs.
_CONV_SETTING = (("conv_impl", "conv", conv_lib.conv_module),)


def _frozen(value: Any) -> Any:
  # Recorded fields come back from JSON with lists; flax modules are hashed (jit caches), so
  # sequences become tuples.
  if isinstance(value, (list, tuple)):
    return tuple(_frozen(v) for v in value)
  return value


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """A registered model.

  Attributes:
    name: the registry name (`config.model.encoder`).
    module: the flax module class; built as `module(**fields, dtype=..., [num_tasks=...])`.
    kind: `"encoder"` or `"distance"`.
    settings: `(setting, module field, convert)` triples: a JSON value a config records (a
      string) that `convert` turns into a `ModuleDef` field, e.g. `("conv_impl", "conv",
      conv_lib.conv_module)`.
  """

  name: str
  module: type[nn.Module]
  kind: str
  settings: tuple[tuple[str, str, Callable[[Any], Any]], ...] = ()

  @property
  def fields(self) -> tuple[str, ...]:
    """The fields a preset or a recorded run sets, in declaration order, then the settings.

    Constructor fields less the engine's and the `ModuleDef` ones (`conv`, `norm`).
    """
    return tuple(f.name for f in dataclasses.fields(self.module)
                 if f.init and f.name not in _ENGINE_FIELDS | _MODULE_FIELDS) + tuple(
                     setting for setting, _, _ in self.settings)

  def build(self, fields: Mapping[str, Any], **engine: Any) -> nn.Module:
    """The module with `fields` (missing ones take the constructor's defaults) and `engine`.

    Raises:
      ValueError: a field the module does not have, naming the valid ones.
    """
    unknown = sorted(set(fields) - set(self.fields))
    if unknown:
      raise ValueError(f"unknown field(s) {unknown} for model {self.name!r}; valid fields: "
                       f"{list(self.fields)}")
    convert = {setting: (target, fn) for setting, target, fn in self.settings}
    kwargs = {}
    for key, value in fields.items():
      if key in convert:
        target, fn = convert[key]
        kwargs[target] = fn(value)
      else:
        kwargs[key] = _frozen(value)
    return self.module(**kwargs, **engine)


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, module: type[nn.Module], *, kind: str,
             settings: tuple[tuple[str, str, Callable[[Any], Any]], ...] = ()) -> ModelEntry:
  """Adds `module` to the registry under `name` and returns its entry.

  Args:
    name: the name configs use (`config.model.encoder`).
    module: a flax module class with a `dtype` field; encoders also take `num_tasks` (sets of
      batch-norm statistics) and map `[B, L]` series to `[B, F]` features, optionally with
      `mask=`, like `ResNet1D`.
    kind: `"encoder"` or `"distance"`.
    settings: recorded strings that stand for `ModuleDef` fields (see `ModelEntry.settings`).

  Raises:
    ValueError: an unknown kind, or `name` already taken by another module.
  """
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
  old = _REGISTRY.get(name)
  if old is not None and (old.module is not module or old.kind != kind):
    raise ValueError(f"model name {name!r} is already registered for {old.module.__name__} "
                     f"({old.kind})")
  _REGISTRY[name] = ModelEntry(name, module, kind, tuple(settings))
  return _REGISTRY[name]


def registered(kind: str | None = None) -> tuple[str, ...]:
  """Names of the registered models (of `kind` when given), in registration order."""
  return tuple(n for n, e in _REGISTRY.items() if kind is None or e.kind == kind)


def lookup(name: str, kind: str | None = None) -> ModelEntry:
  """The registry entry of `name`.

  Raises:
    ValueError: no model of that name (and kind), naming it and listing the choices.
  """
  entry = _REGISTRY.get(name)
  if entry is None or (kind is not None and entry.kind != kind):
    what = "model" if kind is None else f"{kind} model"
    raise ValueError(f"unknown {what} {name!r}; choices: {list(registered(kind))}")
  return entry


register("resnet1d", resnet1d.ResNet1D, kind="encoder")
register("resnet2d", resnet2d.TemplateResNet2D, kind="encoder", settings=_CONV_SETTING)
register("siamese_resnet1d", distance.SiameseResNet1D, kind="distance")
register("distance_resnet2d", distance.DistanceResNet2D, kind="distance", settings=_CONV_SETTING)

# The built-in models (`registered()` also lists models registered later).
CLASSIFIER_ENCODERS = registered("encoder")
DISTANCE_MODELS = registered("distance")

# Fields per model; overrides may set exactly these.
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
  """Fields of model `name` in `preset`, with `overrides` applied.

  Args:
    name: a registered model (`registered()`).
    preset: `"paper"`, `"quick"` or `"tiny"`.
    **overrides: replacements for single fields.

  Returns:
    A new dict of fields.
  """
  lookup(name)
  if preset not in PRESETS:
    raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
  if name not in PRESETS[preset]:
    raise ValueError(f"preset {preset!r} has no fields for model {name!r}; it has "
                     f"{sorted(PRESETS[preset])}")
  config = dict(PRESETS[preset][name])
  unknown = sorted(set(overrides) - set(config))
  if unknown:
    raise ValueError(
        f"unknown override(s) {unknown} for {name!r}; valid keys: {sorted(config)} and dtype")
  config.update(overrides)
  return config


def _fields(name: str, preset: str, fields: Mapping[str, Any] | None,
            overrides: dict[str, Any]) -> dict[str, Any]:
  if fields is None:
    return preset_config(name, preset, **overrides)
  if overrides:
    raise ValueError(f"pass recorded fields or preset overrides, not both (got fields and "
                     f"overrides {sorted(overrides)})")
  return dict(fields)


def _dtype(dtype: Any) -> Any:
  try:
    return jnp.dtype(dtype).type
  except TypeError as e:
    raise ValueError(f"dtype must be a JAX dtype or its name, got {dtype!r}") from e


def classifier(encoder: str, num_classes: Sequence[int], *, preset: str = "paper",
               fields: Mapping[str, Any] | None = None, dtype: Any = jnp.float32,
               head_dropout: float = 0.0, task_batch_stats: bool = False,
               **overrides: Any) -> multitask.MultiTaskModel:
  """Builds ResNet1D / ResNet2D with stacked task heads (Figures 2d and 3d).

  Args:
    encoder: a registered encoder, `"resnet1d"` or `"resnet2d"` (templates + ResNet2D).
    num_classes: class count per task; one entry gives the single-task model.
    preset: `"paper"`, `"quick"` or `"tiny"`.
    fields: the encoder's fields as recorded by a run (see `ModelEntry.fields`); when given,
      `preset` is not read, so a run is rebuilt as it was trained.
    dtype: computation dtype (`jnp.bfloat16` or `"bfloat16"` on
      accelerators); parameters stay float32.
    head_dropout: dropout rate on the shared features before the heads.
    task_batch_stats: one set of batch-norm running statistics per task in the encoder
      (`mtl2d.models.norm.FoldedBatchNorm.num_tasks`); scale and bias stay shared.
    **overrides: preset fields to replace (see `PRESETS`); not with `fields`.

  Returns:
    An unbound `MultiTaskModel`.
  """
  entry = lookup(encoder, "encoder")
  num_classes = tuple(num_classes)
  if not num_classes or any(int(c) != c or c < 1 for c in num_classes):
    raise ValueError(f"num_classes must be a non-empty sequence of ints >= 1, got {num_classes!r}")
  config = _fields(encoder, preset, fields, overrides)
  dtype = _dtype(dtype)
  num_tasks = len(num_classes) if task_batch_stats else 1
  enc = entry.build(config, dtype=dtype, num_tasks=num_tasks)
  return multitask.MultiTaskModel(enc, tuple(int(c) for c in num_classes), dtype=dtype,
                                 dropout=float(head_dropout))


def distance_model(name: str, *, preset: str = "paper", fields: Mapping[str, Any] | None = None,
                   dtype: Any = jnp.float32, **overrides: Any) -> nn.Module:
  """Builds a distance-learning model (Figures 2c and 3c).

  Args:
    name: a registered distance model, `"siamese_resnet1d"` or `"distance_resnet2d"`.
    preset: `"paper"`, `"quick"` or `"tiny"`.
    fields: the model's fields as recorded by a run; when given, `preset` is not read.
    dtype: computation dtype.
    **overrides: preset fields to replace (see `PRESETS`); not with `fields`.

  Returns:
    An unbound `SiameseResNet1D` or `DistanceResNet2D`.
  """
  entry = lookup(name, "distance")
  config = _fields(name, preset, fields, overrides)
  return entry.build(config, dtype=_dtype(dtype))
