"""`train_and_evaluate`: the one training loop behind every experiment.

Per epoch: the train steps of the problem's schedule (Algorithm 2 for multitask
classification, shuffled mini-batches otherwise), then validation and test evaluation, one JSON
line in `workdir/metrics.jsonl`, TensorBoard scalars beside it (`curves`), and a checkpoint
every `checkpoint_every_epochs`; `curves.png` at the end. A rerun with the same workdir resumes
from the latest readable checkpoint and produces the same metrics as an uninterrupted run: the
schedule and the step keys depend only on `(seed, epoch, step)`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import pathlib
import signal
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np

from mtl2d import files
from mtl2d.data import types
from mtl2d.train import builders
from mtl2d.train import checkpoints
from mtl2d.train import config as config_lib
from mtl2d.train import curves
from mtl2d.train import preemption
from mtl2d.train import problems
from mtl2d.train import rundir as rundir_lib
from mtl2d.train import runlock
from mtl2d.train import selection
from mtl2d.train import sharding
from mtl2d.train import state as state_lib
from mtl2d.train import steps as steps_lib

__all__ = ["build_model", "fit", "make_optimizer", "make_problem", "num_epochs_for", "run_identity",
           "train_and_evaluate"]

# Built from the config by `mtl2d.train.builders` and `problems.make_problem`; kept here for
# callers of the loop's names.
build_model = builders.build_model
make_optimizer = builders.make_optimizer
make_problem = problems.make_problem
run_identity = builders.run_identity
num_epochs_for = builders.num_epochs_for


def _check_config(config: ml_collections.ConfigDict) -> None:
  # The problem checks its own settings when it is built (`Problem.from_config`).
  problems.problem_type(config)
  for field in ("batch_size", "num_epochs", "checkpoint_every_epochs", "keep_checkpoints",
                "log_every_steps"):
    if int(config[field]) < 1:
      raise ValueError(f"config.{field} must be >= 1, got {config[field]!r}")
  for field in ("eval_batch_size", "stop_after_epochs", "num_devices", "steps_per_task",
                "min_train_steps", "max_train_steps"):
    if int(config.get(field, 0)) < 0:
      raise ValueError(f"config.{field} must be >= 0, got {config[field]!r}")
  low, high = int(config.get("min_train_steps", 0)), int(config.get("max_train_steps", 0))
  if low and high and low > high:
    raise ValueError(f"config.min_train_steps ({low}) exceeds config.max_train_steps ({high})")
  steps_lib.check_microbatches(config_lib.microbatches(config), int(config.batch_size))


class _Progress:
  """Progress lines inside an epoch: plain log lines (CI-readable), no carriage returns."""

  def __init__(self, epoch: int, num_epochs: int, total_steps: int):
    self.epoch, self.num_epochs, self.total = epoch, num_epochs, total_steps
    self.start = time.perf_counter()

  def log(self, step: int, examples: float, loss: float) -> None:
    elapsed = time.perf_counter() - self.start
    width = 20
    filled = int(width * step / max(self.total, 1))
    logging.info("epoch %d/%d [%s%s] %d/%d steps | train loss %.4f | %.0f ex/s",
                 self.epoch, self.num_epochs, "#" * filled, "." * (width - filled), step,
                 self.total, loss, examples / max(elapsed, 1e-9))


def _check_nonfinite(fetched: dict[str, Any], names: list[str], epoch: int,
                     first_step: int) -> None:
  bad = [int(v["first_nonfinite_step"]) for v in fetched.values()
         if int(v["first_nonfinite_step"]) >= 0]
  if bad:
    step = min(bad)
    k = step - first_step
    raise FloatingPointError(
        f"non-finite training loss in task {names[k]!r} at epoch {epoch}, step {k + 1} of the "
        f"epoch (global step {step + 1}); training stopped. The data passed the NaN check, so "
        f"the model diverged: lower optim.learning_rate or use float32.")


def _train_epoch(problem: problems.Problem, state, train_step, dp, config, epoch, padded,
                 first_step, stop: preemption.StopRequest | None = None,
                 resume: preemption.Snapshot | None = None, best: selection.Best | None = None):
  """Runs one epoch of train steps; returns `(state, per-task summaries, timing)`.

  With `resume`, the epoch goes on after the steps the snapshot holds. When `stop` is requested
  the epoch ends after the current step and a `preemption.Snapshot` (holding `best`) is returned
  instead.
  """
  total = problem.steps_per_epoch(config.batch_size)
  progress = _Progress(epoch, config.num_epochs, total)
  totals: dict[str, Any] = dict(resume.totals) if resume is not None else {}
  names: list[str] = list(resume.names) if resume is not None else []
  host_s, examples = 0.0, 0.0
  t0 = time.perf_counter()
  batches = problem.batches(epoch, config.batch_size, padded)
  for _ in range(len(names)):  # trained before the snapshot: the schedule is deterministic
    next(batches)
  while True:
    # Host-side work (schedule, gather, pad, transfer, metric dispatch) is timed; the train
    # step itself runs asynchronously, so this is the time the device may wait for the host.
    h0 = time.perf_counter()
    item = next(batches, None)
    if item is None:
      host_s += time.perf_counter() - h0
      break
    name, host_batch = item
    examples += float(host_batch["mask"].sum())
    batch = dp.shard_batch(host_batch)
    host_s += time.perf_counter() - h0
    state, metrics = train_step(state, batch)
    h0 = time.perf_counter()
    totals[name] = metrics if name not in totals else steps_lib.accumulate(totals[name], metrics)
    names.append(name)
    host_s += time.perf_counter() - h0
    if stop is not None and stop.requested:
      return preemption.Snapshot(epoch, len(names), state, jax.device_get(totals), names,
                                 selection.extra(best))
    if len(names) % config.log_every_steps == 0 and len(names) < total:
      fetched = jax.device_get(totals)
      _check_nonfinite(fetched, names, epoch, first_step)
      progress.log(len(names), examples, sum(float(v["loss_sum"]) for v in fetched.values())
                   / max(sum(float(v["count"]) for v in fetched.values()), 1.0))
  fetched = jax.device_get(totals)
  wall = time.perf_counter() - t0
  _check_nonfinite(fetched, names, epoch, first_step)
  summaries = {name: steps_lib.summarize(v) for name, v in fetched.items()}
  loss = (sum(float(v["loss_sum"]) for v in fetched.values())
          / max(sum(float(v["count"]) for v in fetched.values()), 1.0))
  timing = {"train_time_s": wall, "examples_per_sec": examples / max(wall, 1e-9),
            "host_overhead_fraction": host_s / max(wall, 1e-9), "steps": len(names)}
  return state, summaries, loss, timing


def _cache_size(jitted) -> int:
  return int(jitted._cache_size())


def _steady(values: list[float]) -> float:
  # The first epoch includes compilation; report the steady state when there is one.
  values = values[1:] if len(values) > 1 else values
  return float(np.median(values)) if values else float("nan")


def fit(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
        problem: problems.Problem) -> dict:
  """Trains `problem` in `workdir` (resuming if it holds a checkpoint); returns the results.

  The workdir's lock (`runlock`) is held from the checks to the end of the run.

  Raises:
    ValueError: the workdir holds a different run, more completed epochs than
      `config.num_epochs`, or is not writable.
    runlock.RunLockedError: another process runs in the workdir (and not
      `config.wait_for_lock`).
    checkpoints.CheckpointMismatchError: its checkpoints hold a different parameter tree
      (nothing in the workdir is changed).
    checkpoints.CheckpointReadError: an I/O error persisted while reading a checkpoint.
  """
  with contextlib.ExitStack() as stack:
    return _fit(config, pathlib.Path(workdir), problem, stack)


@dataclasses.dataclass
class _Run:
  """What `_setup` builds for one call of `fit`, read by `_restore`, `_epoch_loop`, `_results`."""

  config: ml_collections.ConfigDict
  workdir: pathlib.Path
  problem: problems.Problem
  dp: sharding.DataParallel
  is_main: bool
  padded: int
  eval_padded: int
  config_record: dict[str, Any]
  fingerprint: dict[str, Any]
  schedule: Any
  ckpt: checkpoints.Checkpointer
  train_step: Any
  eval_step: Any


def _fit(config: ml_collections.ConfigDict, workdir: pathlib.Path, problem: problems.Problem,
         stack: contextlib.ExitStack) -> dict:
  run, state = _setup(config, workdir, problem, stack)
  state, start, snapshot, history, best = _restore(run, state)
  # jit caches are per function, shared by runs in one process: count this run's additions.
  compiled_before = (_cache_size(run.train_step), _cache_size(run.eval_step))
  best = _epoch_loop(run, state, start, snapshot, history, best, stack)
  return _results(run, history, best, compiled_before)


def _setup(config: ml_collections.ConfigDict, workdir: pathlib.Path, problem: problems.Problem,
           stack: contextlib.ExitStack) -> tuple[_Run, Any]:
  """Checks, locks the workdir, and builds the fresh state, the checkpointer and the steps."""
  epochs = builders.num_epochs_for(config, problem.steps_per_epoch(config.batch_size),
                          max(len(problem.task_score_names), 1))
  if epochs != config.num_epochs:
    logging.info("%s: %d epochs instead of num_epochs=%d (steps_per_task=%s, min/max_train_steps="
                 "%s/%s)", workdir, epochs, config.num_epochs, config.get("steps_per_task", 0),
                 config.get("min_train_steps", 0), config.get("max_train_steps", 0))
    config = copy.deepcopy(config)
    config.num_epochs = epochs
  is_main = jax.process_index() == 0
  dp = sharding.DataParallel(int(config.num_devices))
  padded = sharding.padded_batch_size(config.batch_size, dp.num_devices)
  eval_padded = sharding.padded_batch_size(config.eval_batch_size or config.batch_size,
                                           dp.num_devices)
  if padded != config.batch_size:
    try:
      steps_lib.check_microbatches(config_lib.microbatches(config), padded)
    except ValueError as e:
      raise ValueError(f"{e}; batch_size={config.batch_size} is padded to {padded} for "
                       f"{dp.num_devices} devices") from None
  config_record = builders.config_record(config, dp.num_devices)
  fingerprint = problem.fingerprint()
  # Check everything before writing anything; the claim is written once the state is restored.
  rundir_lib.record_or_verify(workdir, config_record, fingerprint, write=False)
  if is_main:
    rundir_lib.ensure_writable(workdir)
    # Only process 0 locks: the processes of one multi-host run share the workdir.
    stack.enter_context(runlock.hold(workdir, wait=bool(config.get("wait_for_lock", False))))
    if (workdir / "checkpoints").is_dir():
      rundir_lib.ensure_writable(workdir / "checkpoints")
  tx = builders.make_optimizer(config, problem.steps_per_epoch(config.batch_size))
  schedule = builders.learning_rate_schedule(config, problem.steps_per_epoch(config.batch_size))
  # Model and optimizer static (both memoised), the example inputs traced: equal runs in one
  # process reuse the trace and compilation.
  init = jax.jit(state_lib.create_train_state, static_argnums=(1, 3),
                 out_shardings=dp.replicated, compiler_options=steps_lib.FAST_COMPILE)
  state = init(jax.random.PRNGKey(config.seed), problem.model, problem.init_inputs(), tx)
  state = state.replace(params=jax.device_put(problem.init_params(state.params), dp.replicated))

  # Several tasks: each task's best checkpoint is kept too, so every task's reported model
  # (its best validation epoch, `problem.results`) can be restored.
  ckpt = checkpoints.Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints,
                                  keep_best_of=problem.task_score_names)
  fast = bool(config.get("fast_compile", False))
  train_step = steps_lib.jit_train_step(problem.train_step, dp, fast_compile=fast)
  eval_step = steps_lib.jit_eval_step(problem.eval_step, dp, fast_compile=fast)
  run = _Run(config=config, workdir=workdir, problem=problem, dp=dp, is_main=is_main,
             padded=padded, eval_padded=eval_padded, config_record=config_record,
             fingerprint=fingerprint, schedule=schedule, ckpt=ckpt, train_step=train_step,
             eval_step=eval_step)
  return run, state


def _restore(run: _Run, state: Any
             ) -> tuple[Any, int, preemption.Snapshot | None, list[dict], selection.Best | None]:
  """The state to go on from: `(state, last completed epoch, signal snapshot, history, best)`.

  Claims the workdir (config.json, data.json) once the checkpoint is restored.
  """
  workdir, problem, ckpt, is_main = run.workdir, run.problem, run.ckpt, run.is_main
  config_record, fingerprint = run.config_record, run.fingerprint
  try:
    restored = ckpt.restore(state)
  except BaseException:
    ckpt.close()
    raise
  rundir_lib.record_or_verify(workdir, config_record, fingerprint, write=is_main)
  start, extra = 0, None
  if restored is not None:
    state, start, extra = restored.state, restored.epoch, restored.extra
    logging.info("resuming %s from the checkpoint of epoch %d", workdir, start)
  # A run stopped by a signal inside a later epoch goes on from where it stopped.
  snapshot = preemption.load(workdir, state) if jax.process_count() == 1 else None
  if snapshot is not None and snapshot.epoch <= start:
    preemption.remove(workdir)  # an epoch checkpoint is newer
    snapshot = None
  if snapshot is not None:
    state, start = snapshot.state, snapshot.epoch - 1
    if snapshot.extra is not None:
      extra = snapshot.extra
    logging.info("resuming %s from step %d of epoch %d (stopped by a signal)", workdir,
                 snapshot.steps, snapshot.epoch)
  metrics_path = workdir / "metrics.jsonl"
  history = rundir_lib.truncate_metrics(metrics_path, start, write=is_main)
  best = None if extra is None else selection.Best.from_extra(extra, history, problem)
  return state, start, snapshot, history, best


def _epoch_loop(run: _Run, state: Any, start: int, snapshot: preemption.Snapshot | None,
                history: list[dict[str, Any]], best: selection.Best | None,
                stack: contextlib.ExitStack) -> selection.Best | None:
  """Trains, evaluates, records and checkpoints epochs `start + 1 ..`; appends to `history`.

  Returns the best epoch's kept arrays (`selection.Best`), `best` updated by the new epochs.
  """
  config, workdir, problem, ckpt, is_main = (run.config, run.workdir, run.problem, run.ckpt,
                                             run.is_main)
  dp, padded, eval_padded, schedule = run.dp, run.padded, run.eval_padded, run.schedule
  train_step, eval_step = run.train_step, run.eval_step
  metrics_path = workdir / "metrics.jsonl"
  # The first step of the next epoch (`_train_epoch` counts a snapshot's steps again).
  global_step = int(jax.device_get(state.step)) - (snapshot.steps if snapshot else 0)
  last = config.num_epochs
  if config.stop_after_epochs:
    last = min(last, int(config.stop_after_epochs))
  write_curves = is_main and bool(config.get("write_curves", True))
  writer = curves.EventWriter(workdir, first_epoch=start + 1) if write_curves else None
  stop = stack.enter_context(preemption.StopRequest())
  try:
    for epoch in range(start + 1, last + 1):
      t0 = time.perf_counter()
      resume = snapshot if snapshot is not None and snapshot.epoch == epoch else None
      if stop.requested:  # the signal came during the previous epoch's evaluation or save
        out = preemption.Snapshot(epoch, 0, state, {}, [], selection.extra(best))
      else:
        out = _train_epoch(problem, state, train_step, dp, config, epoch, padded, global_step,
                           stop, resume, best)
      if isinstance(out, preemption.Snapshot):
        preemption.save(workdir, out)
        ckpt.close()
        raise preemption.Preempted(
            f"{workdir}: stopped by {signal.Signals(stop.signal).name} after step {out.steps} of "
            f"epoch {epoch}, saved in {workdir / preemption.DIR_NAME}; run the same command "
            f"again to continue (exit code {preemption.EXIT_CODE})")
      state, train, loss, timing = out
      steps = timing.pop("steps")
      global_step += steps
      timing["step_time_s"] = timing["train_time_s"] / max(steps, 1)
      t1 = time.perf_counter()
      record = {"epoch": epoch, "step": global_step, "train": train, "train_loss": loss}
      evaluation = problem.evaluate(state, eval_step, dp, eval_padded)
      record.update(evaluation.metrics)
      timing["eval_time_s"] = time.perf_counter() - t1
      timing["epoch_time_s"] = time.perf_counter() - t0
      record["timing"] = timing
      save = epoch == last or (epoch % config.checkpoint_every_epochs == 0 and (
          not config.get("checkpoint_improved_only", False)
          or selection.improves(problem, record, [r for r in history if r.get("checkpoint")])))
      # Which epochs have a checkpoint: the best of them is what restore_model(which="best")
      # should return, which results.json checks.
      record["checkpoint"] = save
      history.append(record)
      score = problem.score(record)
      # Strictly higher: ties keep the earlier epoch.
      if evaluation.keep is not None and score > (-math.inf if best is None else best.score):
        best = selection.Best(epoch, score, evaluation.keep)
      if is_main:
        rundir_lib.append_metrics(metrics_path, record)
      if resume is not None:
        preemption.remove(workdir)  # its epoch is complete again
        snapshot = None
      if writer is not None:
        lr = float(schedule(global_step - 1))  # the rate of the epoch's last step
        writer.write(epoch, curves.epoch_scalars(record, lr))
      logging.info("epoch %d/%d | train loss %.4f | %s | %.0f ex/s | host overhead %.1f%% | "
                   "%.1fs", epoch, config.num_epochs, loss, evaluation.line,
                   timing["examples_per_sec"], 100 * timing["host_overhead_fraction"],
                   timing["epoch_time_s"])
      if save:
        ckpt.save(epoch, state, score=score, extra=selection.extra(best),
                  scores=problem.task_scores(record))
  finally:
    if writer is not None:
      writer.close()
  if write_curves:
    curves.write_png(workdir, history)
  return best


def _results(run: _Run, history: list[dict[str, Any]], best: selection.Best | None,
             compiled_before: tuple[int, int]) -> dict:
  """The run's results (the problem's model selection plus timing), written by process 0."""
  config, workdir, problem, ckpt, dp = (run.config, run.workdir, run.problem, run.ckpt, run.dp)
  train_step, eval_step = run.train_step, run.eval_step
  results = problem.results(history) if history else {}
  timings = [r["timing"] for r in history]
  best_checkpoint = ckpt.best_epoch()
  results.update({
      "task_type": problem.task_type,
      "multitask": problem.multitask,
      "encoder": config.model.encoder,
      "completed_epochs": len(history),
      "num_epochs": int(config.num_epochs),
      "finished": len(history) >= config.num_epochs,
      "best_checkpoint_epoch": best_checkpoint,
      "train_time_s": float(sum(t["train_time_s"] for t in timings)),
      "examples_per_sec": _steady([t["examples_per_sec"] for t in timings]),
      "host_overhead_fraction": _steady([t["host_overhead_fraction"] for t in timings]),
      "train_step_compilations": _cache_size(train_step) - compiled_before[0],
      "eval_step_compilations": _cache_size(eval_step) - compiled_before[1],
      "num_devices": dp.num_devices,
  })
  lost = selection.lost_best(history, best_checkpoint, problem, config, ckpt)
  if lost is not None:
    results["best_checkpoint_lost"] = lost
    logging.warning("%s: %s", workdir, lost["note"])
  ckpt.close()
  if run.is_main:
    if best is not None:
      problem.write_outputs(workdir, best.epoch, best.keep)
    files.write_json(workdir / "results.json", results)
  sharding.barrier("mtl2d_fit_results")  # other processes may read them next
  return results


def _merge_single_task(workdir: pathlib.Path, problem_type: type[problems.Problem],
                       runs: dict[str, dict[str, Any]],
                       subdirs: dict[str, pathlib.Path]) -> dict[str, Any]:
  """Top-level results and metrics.jsonl of independent per-task runs.

  The problem merges its records and results (`Problem.merge_runs`); the timings are summed or
  averaged here.
  """
  histories = {name: rundir_lib.read_metrics(sub / "metrics.jsonl")
               for name, sub in subdirs.items()}
  records, merged = problem_type.merge_runs(histories, runs)
  epoch_time: dict[int, float] = {}
  for history in histories.values():
    for r in history:
      epoch_time[r["epoch"]] = epoch_time.get(r["epoch"], 0.0) + r["timing"]["epoch_time_s"]
  lines = [m | {"timing": {"epoch_time_s": epoch_time[m["epoch"]]}} for m in records]
  path = workdir / "metrics.jsonl"
  if jax.process_index() == 0:
    files.write_text(path, "".join(json.dumps(m, sort_keys=True) + "\n" for m in lines))
  values = list(runs.values())
  lost = {name: r["best_checkpoint_lost"] for name, r in runs.items()
          if "best_checkpoint_lost" in r}
  return merged | {
      "encoder": values[0]["encoder"],
      "completed_epochs": min(r["completed_epochs"] for r in values),
      "num_epochs": max(r["num_epochs"] for r in values),
      "finished": all(r["finished"] for r in values),
      "task_dirs": {name: str(p.relative_to(workdir)) for name, p in subdirs.items()},
      "train_time_s": float(sum(r["train_time_s"] for r in values)),
      "examples_per_sec": float(np.mean([r["examples_per_sec"] for r in values])),
      "host_overhead_fraction": float(np.mean([r["host_overhead_fraction"] for r in values])),
      "train_step_compilations": max(r["train_step_compilations"] for r in values),
      "eval_step_compilations": max(r["eval_step_compilations"] for r in values),
      "num_devices": values[0]["num_devices"],
      **({"best_checkpoint_lost": lost} if lost else {}),
  }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                       tasks: list[types.Task] | None = None,
                       pairs: dict[str, types.PairSplit] | None = None) -> dict[str, Any]:
  """Trains and evaluates the models a config describes; resumable.

  Classification with `multitask=True`: one model (shared encoder, one head per task) trained
  with Algorithm 2. With `multitask=False`: one independent model per task, each a complete
  run under `workdir/tasks/<task>/`; the top-level `metrics.jsonl` and `results.json` merge
  them. Distance (`task_type="distance"`): MSE regression of `pairs[split].targets[
  config.distance.target]`, best epoch by validation MSE, per-pair test predictions of that
  epoch in `workdir/test_predictions.npz`.

  Args:
    config: see `mtl2d.train.config.base_config`.
    workdir: run directory: `config.json`, `data.json`, `metrics.jsonl` (one JSON line per
      epoch), `checkpoints/`, `results.json`.
    tasks: classification tasks; loaded with `mtl2d.data.config.load_tasks(config.data)` when
      None.
    pairs: distance pairs by split ("train", "val", "test"); loaded with
      `mtl2d.data.config.load_pairs(config.data)` when None.

  Returns:
    The results (also in `workdir/results.json`): classification `tasks[name]` with
    `best_epoch`, `val_accuracy`, `test_accuracy`, `num_classes`; distance `best_epoch`,
    `val_mse`, `test_mse`, `test_mae`; timings (`train_time_s`, `examples_per_sec`,
    `host_overhead_fraction`) and compilation counts.

  Raises:
    ValueError: bad config or data (NaN, labels outside a head, empty splits), or a workdir
      holding a different run, more completed epochs than `num_epochs`, or not writable.
    FloatingPointError: the training loss became NaN/inf (names task, epoch and step).
    mtl2d.train.checkpoints.CheckpointMismatchError: the workdir's checkpoints hold another
      parameter tree (the model's code changed); nothing in the workdir is changed.
  """
  _check_config(config)
  sharding.initialize_distributed()
  workdir = pathlib.Path(workdir)
  problem = problems.make_problem(config, tasks=tasks, pairs=pairs)
  per_task = problem.per_task_problems()
  if per_task is None:
    return fit(config, workdir, problem)

  # One model per task: the top level (which sees every task's epochs) is checked before any
  # task's run starts.
  num_devices = sharding.DataParallel(int(config.num_devices)).num_devices
  record = builders.config_record(config, num_devices)
  # The merged metrics hold as many epochs as the longest task's run (a budget in steps gives
  # each task its own epochs, recorded in its run's config): that is the number the top level
  # records and checks against the epochs on disk; its identity keeps the config as given.
  record["num_epochs"] = max(builders.num_epochs_for(config, p.steps_per_epoch(config.batch_size))
                             for p in per_task.values())
  is_main = jax.process_index() == 0
  rundir_lib.record_or_verify(workdir, record, problem.fingerprint(), write=False)
  with contextlib.ExitStack() as stack:
    if is_main:
      rundir_lib.ensure_writable(workdir)
      stack.enter_context(runlock.hold(workdir, wait=bool(config.get("wait_for_lock", False))))
    rundir_lib.record_or_verify(workdir, record, problem.fingerprint(), write=is_main)
    runs, subdirs = {}, {}
    for name, task_problem in per_task.items():
      subdirs[name] = workdir / "tasks" / files.safe_name(name)
      logging.info("single-task run %r in %s", name, subdirs[name])
      runs[name] = fit(config, subdirs[name], task_problem)
    results = _merge_single_task(workdir, type(problem), runs, subdirs)
    if is_main:
      files.write_json(workdir / "results.json", results)
      if config.get("write_curves", True):
        history = rundir_lib.read_metrics(workdir / "metrics.jsonl")
        curves.write_png(workdir, history)
        curves.write_run_events(workdir, history)
  return results
