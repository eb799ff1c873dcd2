"""Pure train and evaluation steps, and padded host batches that keep them compiled once.

Every batch reaching a compiled step has exactly `batch_size` rows plus a float `mask [B]`
(1 for real rows, 0 for padding), so each step compiles once per series length, not once per
batch size. Padding rows repeat the batch's real rows cyclically (finite values); the mask
removes them from the loss, its gradient and the metrics, and the train steps pass it to the
model, whose batch norms compute their training statistics over the real rows only. So a batch
computes the same function however much it is padded, and results do not depend on the number
of devices the batch is padded for (up to floating-point reduction order).

Gradient accumulation (`config.microbatches = k`): the train steps split the padded batch into
`k` microbatches and run them one after another in a `lax.scan`, so only one microbatch's
activations are live at a time (the memory that lets the paper preset onto a smaller
accelerator); one optimizer update follows. Microbatch `j` holds rows `j, j + k, j + 2k, ...`
(an interleaved split: real rows, which come first, spread over all microbatches, and a batch
sharded over devices stays sharded inside each microbatch). Each microbatch contributes the
gradient of its masked loss *sum* divided by the whole batch's real-row count, so the
accumulated gradient is that of the full batch's masked mean loss: without batch norm (and
without dropout, whose keys differ per microbatch) the update equals the full-batch update up
to floating-point summation order. Batch norm: each microbatch normalises with its own batch
statistics (over its real rows), and the running averages take one momentum update per step
with the real-row-weighted mean of the microbatches' statistics, i.e. `ra <- ra + sum_j (n_j /
n) * (ra_j - ra)` where `ra_j` is the running average microbatch `j` alone would write. The
running mean is then exactly the full batch's; the running variance is the mean
within-microbatch variance (it misses the spread between microbatch means). A microbatch without
real rows (fewer real rows than `k`) is skipped (`lax.cond`): no gradient, no statistics.

Zero-padded series (`config.model.mask_padding`): a classification batch may carry `lengths
[B]` int32, each series' valid steps; the steps pass it to the model (which then ignores the
padded steps, `mtl2d.models.padding`) and to window slicing (which crops within them). Without
`lengths` in the batch nothing changes.

Step metrics are sums (`loss_sum`, `correct`, `count`, ...) so they can be added on device
across steps with `accumulate` and fetched every N steps; `first_nonfinite_step` (-1 if none)
records the first step whose loss was NaN or infinite.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtl2d.train import augment as augment_lib
from mtl2d.train import sharding as sharding_lib
from mtl2d.train import state as state_lib

__all__ = [
    "FAST_COMPILE",
    "accumulate",
    "check_microbatches",
    "classification_eval_step",
    "classification_train_step",
    "classifier_predict",
    "distance_eval_step",
    "distance_train_step",
    "jit_eval_step",
    "jit_train_step",
    "pad_rows",
    "padded_chunks",
    "summarize",
]

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def pad_rows(indices: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Pads example indices to `batch_size` by cyclic repetition.

  Args:
    indices: `[k]` example indices, `1 <= k <= batch_size`.
    batch_size: padded size.

  Returns:
    `(rows [batch_size], mask [batch_size] float32)`.
  """
  k = len(indices)
  if not 1 <= k <= batch_size:
    raise ValueError(f"indices must hold 1..{batch_size} entries, got {k}")
  rows = np.resize(np.asarray(indices), batch_size)
  mask = np.zeros(batch_size, np.float32)
  mask[:k] = 1.0
  return rows, mask


def padded_chunks(n: int, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
  """Rows `0..n-1` in order, in chunks of `batch_size`, the last padded (`pad_rows`).

  Evaluation and prediction loop over these, so every chunk has one shape (one compile).

  Yields:
    `(rows [batch_size], mask [batch_size] float32, k)`: the first `k` rows are real.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  for start in range(0, n, batch_size):
    idx = np.arange(start, min(start + batch_size, n))
    rows, mask = pad_rows(idx, batch_size)
    yield rows, mask, len(idx)


def _step_metrics(state: state_lib.TrainState, loss: jax.Array, sums: Metrics) -> Metrics:
  bad = ~jnp.isfinite(loss)
  out = dict(sums)
  out["first_nonfinite_step"] = jnp.where(bad, state.step, -1).astype(jnp.int32)
  return out


def _masked_mean(values: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  if values.shape != mask.shape:
    raise ValueError(f"per-example values {values.shape} and mask {mask.shape} differ")
  total = jnp.sum(values * mask)
  count = jnp.sum(mask)
  return total / jnp.maximum(count, 1.0), total, count


def check_microbatches(microbatches: int, batch_size: int) -> None:
  """Raises ValueError unless `microbatches >= 1` divides `batch_size` (`config.microbatches`)."""
  if not isinstance(microbatches, (int, np.integer)) or microbatches < 1:
    raise ValueError(f"config.microbatches must be an integer >= 1, got {microbatches!r}")
  if batch_size % microbatches:
    raise ValueError(f"config.microbatches={microbatches} must divide the batch size "
                     f"{batch_size} (the batch is split into equal microbatches)")


# `(params, microbatch, rng) -> (loss_sum, (batch_stats, sums))`: masked sums of one microbatch.
SumsFn = Callable[[Any, Batch, jax.Array], tuple[jax.Array, tuple[Any, Metrics]]]


def _split_rows(batch: Batch, microbatches: int) -> tuple[Batch, Batch]:
  """`([k, B/k, ...] per-row arrays, per-batch scalars)`; microbatch j holds rows j, j+k, ..."""
  rows, scalars = {}, {}
  for key, value in batch.items():
    if jnp.ndim(value) == 0:
      scalars[key] = value
    else:
      value = jnp.asarray(value)
      rows[key] = value.reshape((-1, microbatches) + value.shape[1:]).swapaxes(0, 1)
  return rows, scalars


def _accumulated_grads(sums_fn: SumsFn, state: state_lib.TrainState, batch: Batch,
                       rng: jax.Array, microbatches: int) -> tuple[Any, Any, Metrics]:
  """`(grads, batch_stats, sums)` of the batch's masked mean loss (see the module docstring).

  `rng` is the step's key for the model (dropout); microbatch `j` of several uses
  `fold_in(rng, j)`. `sums` holds `loss_sum` and the sums `sums_fn` returns, over all rows.
  """
  batch_size = jnp.shape(batch["mask"])[0]
  check_microbatches(microbatches, batch_size)
  denom = jnp.maximum(jnp.sum(batch["mask"]), 1.0)

  def grads_of(part: Batch, key: jax.Array):
    def loss_fn(params):
      loss_sum, aux = sums_fn(params, part, key)
      return loss_sum / denom, (loss_sum, aux)

    grads, (loss_sum, (stats, sums)) = jax.grad(loss_fn, has_aux=True)(state.params)
    return grads, stats, dict(sums, loss_sum=loss_sum)

  if microbatches == 1:
    return grads_of(batch, rng)

  rows, scalars = _split_rows(batch, microbatches)
  # Accumulators shaped like one microbatch's outputs.
  first = {**scalars, **jax.tree.map(lambda a: a[0], rows)}
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                       jax.eval_shape(grads_of, first, rng))

  def body(carry, xs):
    j, part = xs
    part = {**scalars, **part}
    n = jnp.sum(part["mask"])

    def run(_):
      grads, stats, sums = grads_of(part, jax.random.fold_in(rng, j))
      # This microbatch's share of one momentum update of the running averages.
      delta = jax.tree.map(lambda new, old: (new - old) * (n / denom), stats, state.batch_stats)
      return grads, delta, sums

    out = jax.lax.cond(n > 0, run, lambda _: zeros, None)
    return jax.tree.map(jnp.add, carry, out), None

  (grads, delta, sums), _ = jax.lax.scan(body, zeros, (jnp.arange(microbatches), rows))
  stats = jax.tree.map(jnp.add, state.batch_stats, delta)
  return grads, stats, sums


def _lengths(batch: Batch) -> dict[str, jax.Array]:
  """`{"lengths": ...}` when the batch carries valid lengths (`model.mask_padding`), else {}."""
  return {"lengths": batch["lengths"]} if "lengths" in batch else {}


def classification_train_step(
    state: state_lib.TrainState, batch: Batch, *,
    augmentation: augment_lib.Augmentation = augment_lib.Augmentation(),
    microbatches: int = 1,
) -> tuple[state_lib.TrainState, Metrics]:
  """One AdamW step on cross-entropy of the batch's task head.

  The optimizer receives the batch's `task_id`, so with per-task heads
  (`optimizers.make_optimizer(per_task_heads=True)`) only that task's head and the shared
  encoder move (Algorithm 2: every batch comes from one task).

  Args:
    state: train state of a `MultiTaskModel` (called as `(x, task_id, *, train, mask)`).
    batch: `x [B, n]` float, `y [B]` int32, `mask [B]` float32, `task_id` int32 scalar, and
      optionally `lengths [B]` int32, the valid steps of zero-padded series (see the module
      docstring).
    augmentation: training-time augmentation of `x` (static; default none), drawn for the
      whole batch before it is split into microbatches.
    microbatches: gradient accumulation over this many sequential parts of the batch (static,
      `config.microbatches`; must divide `B`); see the module docstring for what equals the
      full-batch step and how batch-norm statistics are combined.

  Returns:
    `(new_state, metrics)`, metrics: `loss_sum`, `correct`, `count` (sums over real rows) and
    `first_nonfinite_step`.

  Raises:
    ValueError: `microbatches` < 1 or not dividing `B`.
  """
  step_rng = jax.random.fold_in(state.rng, state.step)
  dropout_rng, augment_rng = jax.random.split(step_rng)
  x = augment_lib.augment_batch(batch["x"], augment_rng, augmentation,
                                lengths=batch.get("lengths"))

  def sums_fn(params, part, key):
    (logits, _), updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, part["x"], part["task_id"],
        train=True, mask=part["mask"], mutable=["batch_stats"], rngs={"dropout": key},
        **_lengths(part))
    # Classes the task lacks carry a large negative logit (zero probability), so plain
    # cross-entropy over all heads' classes is the task's own cross-entropy.
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, part["y"])
    _, loss_sum, count = _masked_mean(ce, part["mask"])
    correct = jnp.sum((jnp.argmax(logits, -1) == part["y"]) * part["mask"])
    return loss_sum, (updates.get("batch_stats", {}), dict(correct=correct, count=count))

  grads, batch_stats, sums = _accumulated_grads(sums_fn, state, dict(batch, x=x), dropout_rng,
                                                microbatches)
  loss = sums["loss_sum"] / jnp.maximum(sums["count"], 1.0)
  new_state = state.apply_gradients(grads=grads, task_id=batch["task_id"],
                                    batch_stats=batch_stats)
  return new_state, _step_metrics(state, loss, sums)


def distance_train_step(state: state_lib.TrainState, batch: Batch, *,
                        microbatches: int = 1) -> tuple[state_lib.TrainState, Metrics]:
  """One AdamW step on the mean squared error of predicted DTW distances (Section III-C).

  Args:
    state: train state of a distance model (called as `(x1, x2, *, train, mask) -> [B]`).
    batch: `x1 [B, n]`, `x2 [B, m]`, `y [B]` float32 targets, `mask [B]` float32.
    microbatches: gradient accumulation over this many sequential parts of the batch (static,
      `config.microbatches`; must divide `B`), as in `classification_train_step`.

  Returns:
    `(new_state, metrics)`, metrics: `loss_sum` (squared errors), `abs_sum`, `count` and
    `first_nonfinite_step`.

  Raises:
    ValueError: `microbatches` < 1 or not dividing `B`.
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def sums_fn(params, part, key):
    pred, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, part["x1"], part["x2"],
        train=True, mask=part["mask"], mutable=["batch_stats"], rngs={"dropout": key})
    pred = pred.astype(jnp.float32)
    _, loss_sum, count = _masked_mean(jnp.square(pred - part["y"]), part["mask"])
    abs_sum = jnp.sum(jnp.abs(pred - part["y"]) * part["mask"])
    return loss_sum, (updates.get("batch_stats", {}), dict(abs_sum=abs_sum, count=count))

  grads, batch_stats, sums = _accumulated_grads(sums_fn, state, batch, dropout_rng,
                                                microbatches)
  loss = sums["loss_sum"] / jnp.maximum(sums["count"], 1.0)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return new_state, _step_metrics(state, loss, sums)


def _variables(state: Any) -> dict[str, Any]:
  return {"params": state.params, "batch_stats": state.batch_stats}


def classification_eval_step(state: state_lib.TrainState, batch: Batch) -> Metrics:
  """Cross-entropy and accuracy sums over the real rows of `batch` (running BN averages).

  `batch` as in `classification_train_step` (its `lengths`, if any, go to the model).
  """
  logits, _ = state.apply_fn(_variables(state), batch["x"], batch["task_id"], train=False,
                             **_lengths(batch))
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
  _, loss_sum, count = _masked_mean(ce, batch["mask"])
  correct = jnp.sum((jnp.argmax(logits, -1) == batch["y"]) * batch["mask"])
  return dict(loss_sum=loss_sum, correct=correct, count=count)


def distance_eval_step(state: state_lib.TrainState, batch: Batch) -> jax.Array:
  """Predicted distances `[B]` (float32) of a batch of pairs (running BN averages)."""
  pred = state.apply_fn(_variables(state), batch["x1"], batch["x2"], train=False)
  return pred.astype(jnp.float32)


def classifier_predict(apply_fn: Callable[..., Any], variables: Any, x: jax.Array,
                       task_id: jax.Array, lengths: jax.Array | None = None,
                       ) -> tuple[jax.Array, jax.Array]:
  """`(logits [B, C_max], features [B, F])` of a batch of one task (running BN averages).

  `lengths [B]`: valid steps of zero-padded series, for a model trained with
  `model.mask_padding` (None: every step is valid).
  """
  kwargs = {} if lengths is None else {"lengths": lengths}
  logits, aux = apply_fn(variables, x, task_id, train=False, **kwargs)
  return logits, aux["features"]


@jax.jit
def accumulate(total: Metrics, metrics: Metrics) -> Metrics:
  """Adds step metrics on device; keeps the earliest `first_nonfinite_step`."""
  out = {k: total[k] + metrics[k] for k in total if k != "first_nonfinite_step"}
  first = total["first_nonfinite_step"]
  out["first_nonfinite_step"] = jnp.where(first < 0, metrics["first_nonfinite_step"], first)
  return out


def summarize(total: dict[str, Any]) -> dict[str, float]:
  """Host means of fetched sums: `loss` and `accuracy` or `mse`/`mae`."""
  count = max(float(total["count"]), 1.0)
  out = {"loss": float(total["loss_sum"]) / count, "count": int(total["count"])}
  if "correct" in total:
    out["accuracy"] = float(total["correct"]) / count
  if "abs_sum" in total:
    out["mae"] = float(total["abs_sum"]) / count
  return out


# XLA's backend optimisation dominates compile time of small models on CPU; level 0 compiles
# several times faster and runs slower, which pays off for code that runs once (init) or for
# tests and tiny CPU runs (`config.fast_compile`).
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def jit_train_step(step_fn: Callable[..., Any], dp: sharding_lib.DataParallel, *,
                   fast_compile: bool = False) -> Callable[..., Any]:
  """Jits a train step once: state donated and replicated, batch sharded by its inputs."""
  return jax.jit(step_fn, donate_argnums=0, out_shardings=(dp.replicated, dp.replicated),
                 compiler_options=FAST_COMPILE if fast_compile else None)


def jit_eval_step(step_fn: Callable[..., Any], dp: sharding_lib.DataParallel, *,
                  fast_compile: bool = False) -> Callable[..., Any]:
  """Jits an evaluation step once; outputs replicated (fetched to the host)."""
  return jax.jit(step_fn, out_shardings=dp.replicated,
                 compiler_options=FAST_COMPILE if fast_compile else None)
