import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

from mtl2d.bench import models as bench_models

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_launcher_writes_json(tmp_path):
  out = tmp_path / "bench" / "r.json"
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.benchmark", "--model=resnet2d", "--preset=tiny",
       "--batch_size=4", "--length=12", "--steps=2", f"--output={out}"],
      cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True,
      timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(out.read_text())
  assert json.loads(proc.stdout) == result
  assert len(result["step_s_all"]) == 2
  for key in ("compile_s", "step_s", "examples_per_s", "flops_per_step", "flops_per_s",
              "fraction_of_peak"):
    assert math.isfinite(result[key]) and result[key] > 0, key
  assert result["reference_conv"]["shape"] == [4, 12, 6, 4]
  mem = result["memory"]
  assert mem["peak_bytes"] == (mem["argument_bytes"] + mem["output_bytes"] + mem["temp_bytes"]
                               - mem["alias_bytes"])
  # Parameters, batch statistics and AdamW moments are all arguments.
  assert mem["argument_bytes"] >= 3 * 4 * result["num_params"]


def test_compile_only_allocates_nothing_and_runs_nothing():
  result = bench_models.benchmark_train_step("resnet1d", preset="tiny", batch_size=3, length=10,
                                             compile_only=True)
  assert result["compile_only"] and "step_s" not in result
  assert result["flops_per_step"] > 0 and result["memory"]["peak_bytes"] > 0
  with pytest.raises(ValueError, match="remat"):
    bench_models.benchmark_train_step("resnet1d", preset="tiny", remat=True, compile_only=True)


def test_flops_do_not_depend_on_the_conv_gradient_implementation():
  # The matmul gradients scan over pixel blocks, whose body XLA's cost analysis counts once; the
  # benchmark counts the same math on the XLA-convolution twin instead.
  kwargs = dict(preset="tiny", batch_size=2, length=8, compile_only=True, widths=(64,),
                num_templates=2, template_length=6)
  flops = {impl: bench_models.benchmark_train_step("resnet2d", conv_impl=impl,
                                                   **kwargs)["flops_per_step"]
           for impl in ("matmul", "xla")}
  assert flops["matmul"] == flops["xla"] > 0


def test_microbatched_step_matches_sequential_halves():
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from mtl2d import models

  model = models.classifier("resnet1d", (3,), preset="tiny")
  optimizer = optax.adamw(1e-4)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((4, 10), np.float32))
  y = jnp.asarray([0, 1, 2, 1], jnp.int32)
  variables = jax.jit(lambda x: model.init(jax.random.key(0, impl="rbg"), x, 0, train=False))(x)
  state = {"params": variables["params"], "batch_stats": variables["batch_stats"],
           "opt_state": optimizer.init(variables["params"])}
  step = jax.jit(bench_models.make_train_step(model, optimizer, microbatches=2))
  new_state, loss = step(state, x, y, jnp.int32(0))

  # Reference: two separate halves, batch statistics threaded through.
  @jax.jit
  def reference(variables, opt_state):
    stats, grads, losses = variables["batch_stats"], [], []
    for part in (slice(0, 2), slice(2, 4)):
      def loss_fn(p, stats=stats, part=part):
        (logits, _), upd = model.apply({"params": p, "batch_stats": stats}, x[part], 0,
                                       train=True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[part]).mean(), upd
      (part_loss, upd), g = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
      stats = upd["batch_stats"]
      grads.append(g)
      losses.append(part_loss)
    mean_grads = jax.tree.map(lambda a, b: (a + b) / 2, *grads)
    updates, _ = optimizer.update(mean_grads, opt_state, variables["params"])
    return optax.apply_updates(variables["params"], updates), stats, losses

  ref_params, stats, losses = reference(variables, state["opt_state"])
  np.testing.assert_allclose(loss, (losses[0] + losses[1]) / 2, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               new_state["params"], ref_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               new_state["batch_stats"], stats)
