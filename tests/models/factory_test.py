import dataclasses
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import models
from mtl2d.models import conv
from mtl2d.models import factory


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


@pytest.mark.parametrize("kind,name,call", [
    ("encoder", "resnet3d", lambda: models.classifier("resnet3d", (2,))),
    ("distance", "dtw", lambda: models.distance_model("dtw")),
    (None, "transformer", lambda: factory.lookup("transformer")),
    (None, "transformer", lambda: models.preset_config("transformer", "tiny")),
])
def test_unknown_model_names_itself_and_the_choices(kind, name, call):
  with pytest.raises(ValueError) as e:
    call()
  choices = factory.registered(kind)
  assert f"{name!r}; choices: {list(choices)}" in str(e.value)
  builtin = {"encoder": factory.CLASSIFIER_ENCODERS, "distance": factory.DISTANCE_MODELS,
             None: factory.CLASSIFIER_ENCODERS + factory.DISTANCE_MODELS}[kind]
  assert set(builtin) <= set(choices) and builtin


def test_encoder_is_not_a_distance_model():
  with pytest.raises(ValueError, match=r"unknown distance model 'resnet1d'"):
    models.distance_model("resnet1d")


def test_every_preset_sets_every_constructor_field():
  # A model's fields are its constructor's fields less dtype / num_tasks (set by the builder)
  # and the ModuleDef ones (conv, norm), plus the settings that stand for them (conv_impl):
  # what a run records, and what rebuilds it.
  for preset, per_model in factory.PRESETS.items():
    assert set(per_model) == set(factory.registered()), preset
    for name, fields in per_model.items():
      entry = factory.lookup(name)
      expected = {f.name for f in dataclasses.fields(entry.module)} - {
          "parent", "name", "dtype", "num_tasks", "conv", "norm"}
      expected |= {setting for setting, _, _ in entry.settings}
      assert set(fields) == set(entry.fields) == expected, (preset, name)


def test_conv_is_injected_as_a_module_def_from_its_recorded_string():
  xla = models.classifier("resnet2d", (3,), preset="tiny", conv_impl="xla").encoder
  auto = models.classifier("resnet2d", (3,), preset="tiny").encoder
  assert xla.conv is conv.conv_module("xla") and auto.conv is conv.conv_module("auto")
  assert xla.conv.func is nn.Conv and xla.conv.keywords == {"conv_general_dilated": None}
  assert models.classifier("resnet2d", (3,), preset="tiny") == models.classifier(
      "resnet2d", (3,), preset="tiny")  # the same partial: equal, hashable modules
  with pytest.raises(ValueError, match="conv_impl must be one of"):
    models.classifier("resnet2d", (3,), preset="tiny", conv_impl="cudnn")


def test_recorded_fields_build_the_same_model_whatever_the_preset(monkeypatch):
  fields = models.preset_config("resnet2d", "tiny", downsample=2)
  # As JSON gives them back: lists, not tuples.
  recorded = json.loads(json.dumps(fields))
  built = models.classifier("resnet2d", (3,), preset="tiny", downsample=2)
  monkeypatch.setitem(factory.PRESETS["tiny"], "resnet2d",
                      dict(factory.PRESETS["tiny"]["resnet2d"], widths=(3,), downsample=0))
  again = models.classifier("resnet2d", (3,), preset="paper", fields=recorded)
  assert again == built and hash(again) == hash(built)
  assert models.classifier("resnet2d", (3,), preset="tiny").encoder.widths == (3,)
  distance = models.distance_model("distance_resnet2d", fields={"widths": [2, 2]})
  assert distance.widths == (2, 2)
  assert distance.conv is conv.conv_module("auto")  # the constructor default


def test_recorded_fields_are_checked():
  with pytest.raises(ValueError, match=r"unknown field\(s\) \['depth'\] for model 'resnet1d'; "
                                       r"valid fields: \['features', 'kernel_sizes'\]"):
    models.classifier("resnet1d", (2,), fields={"features": (4,), "depth": 3})
  with pytest.raises(ValueError, match="not both"):
    models.classifier("resnet1d", (2,), fields={"features": (4,)}, kernel_sizes=(3,))


def test_register_adds_a_model_by_name(monkeypatch):
  monkeypatch.setattr(factory, "_REGISTRY", dict(factory._REGISTRY))
  monkeypatch.setitem(factory.PRESETS["tiny"], "wide_resnet1d", dict(features=(6,),
                                                                      kernel_sizes=(3,)))

  class WideResNet1D(models.ResNet1D):
    pass

  entry = factory.register("wide_resnet1d", WideResNet1D, kind="encoder")
  assert entry.fields == ("features", "kernel_sizes")
  assert "wide_resnet1d" in factory.registered("encoder")
  model = models.classifier("wide_resnet1d", (2,), preset="tiny")
  assert isinstance(model.encoder, WideResNet1D) and model.encoder.features == (6,)
  with pytest.raises(ValueError, match="already registered"):
    factory.register("wide_resnet1d", models.ResNet1D, kind="encoder")
  with pytest.raises(ValueError, match="kind must be one of"):
    factory.register("other", WideResNet1D, kind="decoder")
