"""Train-step throughput and memory of the MTL classifiers (jit benchmark).

`benchmark_train_step` builds a classifier from a preset, jits the training
engine's own train step (`mtl2d.train.steps.classification_train_step`:
forward + backward + the engine's AdamW with per-task heads at the base config's
learning rate 1e-4, Section III-C; a full batch of real rows, no augmentation;
`microbatches` is the engine's `config.microbatches`) and reports compile time,
steady-state step time, examples/s, FLOPs per step from XLA's cost analysis,
achieved FLOP/s, peak memory from XLA's memory analysis, and the fraction of
the machine's peak, where "peak" is the FLOP/s of a plain
convolution of matching size timed in the same run, alternating with the train
steps so that both see the same machine speed (`reference_conv`): a 3x3
`width -> width` conv on the first ResNet2D stage's `[batch, n, m, width]`
activation, or for ResNet1D a size-5 `width -> width` 1D conv over
`[batch, length, width]` with the last block's width.

With `compile_only=True` nothing is allocated or run: parameters are abstract
(`jax.eval_shape`) and only the compiled step's cost and memory analyses are
reported, which is how the paper-scale footprint (batch 40, n = 945, k = 64,
m = 512) is obtained on a machine that cannot run it. The analysis is the
compiling backend's: XLA:CPU has no bfloat16 convolution and converts to
float32 around each one, so on CPU bfloat16 shows more memory, not less; on
GPU/TPU the convolutions run in bfloat16 and the activations halve.
"""

from collections.abc import Sequence
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mtl2d.models import conv as conv_lib
from mtl2d.models import conv_native
from mtl2d.models import factory
from mtl2d.train import builders
from mtl2d.train import config as config_lib
from mtl2d.train import sharding
from mtl2d.train import state as state_lib
from mtl2d.train import steps as steps_lib

__all__ = ["benchmark_train_step", "memory_stats", "reference_conv"]


def memory_stats(compiled: Any) -> dict[str, int]:
  """Sizes in bytes from XLA's memory analysis of a compiled function.

  `peak_bytes` is `argument + output + temp - alias`: every buffer live
  during the call, with donated inputs that alias outputs counted once.
  `xla_peak_memory_bytes` is the backend's own peak figure where it reports
  one (its accounting differs between backends).
  """
  analysis = compiled.memory_analysis()
  if analysis is None:
    return {}
  stats = {name: int(getattr(analysis, f"{name}_size_in_bytes", 0))
           for name in ("argument", "output", "temp", "alias", "generated_code")}
  stats["sum_argument_output_temp_bytes"] = stats["argument"] + stats["output"] + stats["temp"]
  stats["peak_bytes"] = stats["sum_argument_output_temp_bytes"] - stats["alias"]
  stats["xla_peak_memory_bytes"] = int(getattr(analysis, "peak_memory_in_bytes", 0) or 0)
  return {k if k.endswith("bytes") else f"{k}_bytes": v for k, v in stats.items()}


def _flops(compiled: Any) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older JAX: one dict per computation
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get("flops", float("nan")))


def _time_steps(fn, args, steps: int) -> list[float]:
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return times


def _reference_conv_call(shape: Sequence[int], kernel_size: int, dtype: Any,
                         seed: int) -> tuple[Any, tuple[jax.Array, jax.Array], float]:
  """The compiled reference convolution, its arguments and its FLOPs (see `reference_conv`)."""
  shape = tuple(int(s) for s in shape)
  if len(shape) not in (3, 4):
    raise ValueError(
        f"shape must be [batch, *spatial, width] with 1 or 2 spatial axes, got {shape}")
  spatial = len(shape) - 2
  width = shape[-1]
  lhs_spec = "NHWC" if spatial == 2 else "NWC"
  rhs_spec = "HWIO" if spatial == 2 else "WIO"
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal(shape, np.float32), dtype)
  w = jnp.asarray(rng.standard_normal((kernel_size,) * spatial + (width, width), np.float32) /
                  np.sqrt(kernel_size ** spatial * width), dtype)
  conv = jax.jit(functools.partial(
      jax.lax.conv_general_dilated, window_strides=(1,) * spatial, padding="SAME",
      dimension_numbers=(lhs_spec, rhs_spec, lhs_spec)))
  compiled = conv.lower(x, w).compile()
  jax.block_until_ready(compiled(x, w))
  return compiled, (x, w), _flops(compiled)


def reference_conv(shape: Sequence[int], kernel_size: int, dtype: Any, *, steps: int = 5,
                   seed: int = 0) -> dict[str, float]:
  """Times a plain `lax.conv_general_dilated` (`width -> width`, `SAME`).

  Args:
    shape: activation shape `[batch, *spatial, width]` (1 or 2 spatial axes).
    kernel_size: filter size along every spatial axis.
    dtype: input and kernel dtype.
    steps: timed repetitions (after one warm-up run).
    seed: PRNG seed for the inputs.

  Returns:
    `flops` (XLA cost analysis), `seconds` (median) and `flops_per_s`.
  """
  compiled, args, flops = _reference_conv_call(shape, kernel_size, dtype, seed)
  seconds = float(np.median(_time_steps(compiled, args, steps)))
  return {"flops": flops, "seconds": seconds, "flops_per_s": flops / seconds}


def benchmark_train_step(model: str = "resnet2d", *, batch_size: int = 40, length: int = 128,
                         preset: str = "quick", dtype: str = "float32", remat: bool = False,
                         num_classes: Sequence[int] = (5,), microbatches: int = 1, steps: int = 20,
                         compile_only: bool = False, seed: int = 0,
                         **overrides: Any) -> dict[str, Any]:
  """Measures one MTL classifier's jitted train step.

  Args:
    model: `"resnet1d"` or `"resnet2d"` (`factory.CLASSIFIER_ENCODERS`).
    batch_size: examples per step.
    length: series length n.
    preset: `"paper"`, `"quick"` or `"tiny"`.
    dtype: computation dtype name (`"float32"` or `"bfloat16"`).
    remat: per-stage rematerialisation (ResNet2D only).
    num_classes: class counts of the tasks (heads).
    microbatches: the engine's `config.microbatches`: gradient accumulation over
      this many sequential parts of each batch (see `mtl2d.train.steps`); bounds
      activation memory.
    steps: timed steps after the first (compiling) call; >= 1.
    compile_only: only compile and report cost and memory analyses.
    seed: PRNG seed of parameters and data.
    **overrides: further preset fields (see `factory.PRESETS`).

  Returns:
    A JSON-serialisable dict (all times in seconds, sizes in bytes).
  """
  if model not in factory.CLASSIFIER_ENCODERS:
    raise ValueError(f"model must be one of {list(factory.CLASSIFIER_ENCODERS)}, got {model!r}")
  if batch_size < 1 or length < 1 or steps < 1:
    raise ValueError(f"batch_size, length and steps must be >= 1, got {batch_size}, {length}, "
                     f"{steps}")
  steps_lib.check_microbatches(microbatches, batch_size)
  if remat:
    if model != "resnet2d":
      raise ValueError("remat is only available for model='resnet2d'")
    overrides["remat"] = True
  net = factory.classifier(model, tuple(num_classes), preset=preset, dtype=dtype, **overrides)
  config = factory.preset_config(model, preset, **overrides)
  # The engine's optimizer and jitted step (state donated), on one device.
  tx = builders.make_optimizer(config_lib.base_config(), steps_per_epoch=1)
  jit_step = functools.partial(steps_lib.jit_train_step, dp=sharding.DataParallel(1))
  step_fn = functools.partial(steps_lib.classification_train_step, microbatches=microbatches)
  x_spec = jax.ShapeDtypeStruct((batch_size, length), jnp.float32)
  batch_spec = {"x": x_spec, "y": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
                "mask": jax.ShapeDtypeStruct((batch_size,), jnp.float32),
                "task_id": jax.ShapeDtypeStruct((), jnp.int32)}

  def init_fn(net):
    return lambda key, x: state_lib.create_train_state(key, net, (x, jnp.int32(0)), tx)

  def compile_step(net):
    state_spec = jax.eval_shape(init_fn(net), key, x_spec)
    return state_spec, jit_step(step_fn).lower(state_spec, batch_spec).compile()

  # "rbg" keys: threefry initialisers take many seconds to compile on CPU and
  # the measured step does not depend on how the parameters were drawn.
  key = jax.random.key(seed, impl="rbg")
  start = time.perf_counter()
  state_spec, compiled = compile_step(net)
  compile_s = time.perf_counter() - start
  num_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(state_spec.params))
  # XLA's cost analysis counts a loop body once: scale the scanned microbatch
  # part (the optimizer update outside it is negligible next to the convs).
  flops = _flops(compiled) * microbatches
  if model == "resnet2d" and conv_lib.resolve_conv(config["conv_impl"]) is not None:
    # The matmul conv gradients scan over pixel blocks, which the cost analysis would count once;
    # the FLOPs of the same math are counted on the twin step with XLA's convolutions.
    twin = factory.classifier(model, tuple(num_classes), preset=preset, dtype=dtype,
                              **{**overrides, "conv_impl": "xla"})
    flops = _flops(compile_step(twin)[1]) * microbatches
  result: dict[str, Any] = {
      "model": model, "preset": preset, "dtype": jnp.dtype(dtype).name, "remat": remat,
      "microbatches": microbatches,
      "batch_size": batch_size, "length": length, "num_classes": list(num_classes),
      "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
      "num_params": num_params, "backend": jax.default_backend(),
      "device": str(jax.devices()[0].device_kind), "compile_s": compile_s,
      "flops_per_step": flops, "memory": memory_stats(compiled), "compile_only": compile_only,
  }
  if model == "resnet2d":
    # Whether the step's kernel gradients run in the native CPU kernel (`conv_native`).
    result["native_conv_kernel"] = conv_native.TARGET in compiled.as_text()
  if compile_only:
    return result

  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal(x_spec.shape, np.float32))
  batch = {"x": x, "y": jnp.asarray(rng.integers(0, min(num_classes), batch_size), jnp.int32),
           "mask": jnp.ones(batch_size, jnp.float32), "task_id": jnp.int32(0)}
  state = jax.jit(init_fn(net))(key, x)
  start = time.perf_counter()
  state, metrics = compiled(state, batch)  # first call: allocation, warm-up
  jax.block_until_ready(metrics)
  result["first_step_s"] = time.perf_counter() - start
  if model == "resnet2d":
    ref_shape, kernel = (batch_size, length, config["template_length"], config["widths"][0]), 3
  else:
    ref_shape, kernel = (batch_size, length, config["features"][-1]), 5
  ref_call, ref_args, ref_flops = _reference_conv_call(ref_shape, kernel, jnp.dtype(dtype), seed)
  # Steps and reference convolutions alternate (per step, up to 20 convs taking about a step's
  # time; the first step takes ~2 steps), so that a change of machine speed during the run
  # affects both alike.
  ref_once = max(_time_steps(ref_call, ref_args, 1)[0], 1e-6)
  ref_repeats = int(np.clip(round(result["first_step_s"] / 2 / ref_once), 1, 20))
  times, ref_times = [], []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
    ref_times += _time_steps(ref_call, ref_args, ref_repeats)
  step_s = float(np.median(times))
  result.update(step_s=step_s, step_s_all=times, examples_per_s=batch_size / step_s,
                flops_per_s=flops / step_s,
                loss=float(metrics["loss_sum"]) / float(metrics["count"]))
  ref_s = float(np.median(ref_times))
  result["reference_conv"] = {"shape": list(ref_shape), "kernel_size": kernel, "flops": ref_flops,
                              "seconds": ref_s, "flops_per_s": ref_flops / ref_s,
                              "repetitions": len(ref_times)}
  result["fraction_of_peak"] = result["flops_per_s"] / result["reference_conv"]["flops_per_s"]
  return result
