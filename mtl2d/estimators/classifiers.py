"""scikit-learn style classifiers: ResNet1D, ResNet2D and their multitask model on your arrays.

    clf = ResNet2DClassifier().fit(X, y)   # X [N, length] or a list of series
    clf.predict(X_new), clf.predict_proba(X_new), clf.score(X_test, y_test), clf.classes_
    clf.save("model/"); ResNet2DClassifier.load("model/")
    clf.export("exported/")       # then mtl2d.exported.load("exported/") with only JAX + NumPy

    mtl = MultiTaskClassifier(encoder="resnet2d").fit({"X": (Xx, yx), "Y": (Xy, yy)})
    mtl.predict(Xx_new, task="X")

Conventions (scikit-learn's): the constructor only stores its arguments, `fit` validates
them and returns the estimator, fitted attributes end with `_`, `get_params`, `set_params` and
`sklearn.base.clone` work. Training is `mtl2d.train.train_and_evaluate` (see
`mtl2d.estimators.fitting`); the model kept for each task is its checkpoint of best validation
accuracy (ties -> earliest epoch), as in the paper.

Inputs: univariate series as an `[N, length]` array (also `[N, 1, length]`), multivariate ones
as `[N, channels, length]` (aeon's layout; ResNet2D compares points of R^channels with its
templates by Euclidean distance, ResNet1D takes the channels as its input channels), a list of
series of different lengths, or a nested pandas frame. The tasks of a `MultiTaskClassifier` may
differ in channels: the model takes the largest count, the other tasks' missing channels are
zeros. Every series is resampled by linear interpolation to the model's
length (the longest training series, or `length`) as the UCR loader does, then z-normalised
per series (`znormalize`); prediction applies the same steps, to series of any length.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import difflib
import os
import pathlib
from typing import Any

import numpy as np
from sklearn import base
from sklearn.utils import validation

from mtl2d import preprocess
from mtl2d.estimators import fitting
from mtl2d.estimators import persistence
from mtl2d.train import recipe

__all__ = ["MultiTaskClassifier", "ResNet1DClassifier", "ResNet2DClassifier", "load"]

ArrayLike = Any
SINGLE_TASK_NAME = "task"
_REAL = (int, float, np.integer, np.floating)


def _refit_mode(value: Any) -> bool | str:
  """A `refit` setting as recorded: "average", or True / False (NumPy booleans included)."""
  return value if isinstance(value, str) else bool(value)


class _Estimator(base.BaseEstimator):
  """Parameters, validation and the engine call shared by all estimators."""

  _encoder: str = ""

  def _store(self, arguments: dict[str, Any]) -> None:
    # scikit-learn's contract: `__init__` stores each argument under its name, unvalidated.
    for name in self._get_param_names():
      setattr(self, name, arguments[name])

  def _encoder_name(self) -> str:
    return self._encoder

  def _check_params(self) -> int:
    """Validates the constructor arguments (scikit-learn: in `fit`); returns the seed."""
    for name in ("epochs", "batch_size"):
      value = getattr(self, name)
      if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                or value < 1):
        raise ValueError(f"{name} must be None (chosen from the data) or an integer >= 1, got "
                         f"{value!r}")
    for name in ("learning_rate", "weight_decay", "validation_fraction"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, _REAL) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not self.learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
    if self.weight_decay < 0:
      raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
    if not 0.0 < self.validation_fraction < 0.5:
      raise ValueError(f"validation_fraction must be in (0, 0.5): the share of the training "
                       f"series held out to choose the epoch, less than what is trained on; got "
                       f"{self.validation_fraction!r}")
    if self.length is not None and (isinstance(self.length, bool)
                                    or not isinstance(self.length, (int, np.integer))
                                    or self.length < 1):
      raise ValueError(f"length must be None or an integer >= 1, got {self.length!r}")
    if not isinstance(self.znormalize, (bool, np.bool_)):
      raise ValueError(f"znormalize must be True or False, got {self.znormalize!r}")
    if not (self.refit is None or isinstance(self.refit, (bool, np.bool_))
            or self.refit == "average"):
      raise ValueError(f"refit must be None (the encoder's default), True, False or "
                       f"'average', got {self.refit!r}")
    if self.workdir is not None and not isinstance(self.workdir, (str, os.PathLike)):
      raise ValueError(f"workdir must be None or a directory path, got {self.workdir!r}")
    if self.config_overrides is not None and not isinstance(self.config_overrides, Mapping):
      raise ValueError(f"config_overrides must be a dict of training config fields or None, "
                       f"got {type(self.config_overrides).__name__}")
    fitting.check_model_options(self._encoder_name(), self.preset, self.model_options)
    seed = self.random_state
    if seed is None:
      return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
      raise ValueError(f"random_state must be None or an integer >= 0, got {seed!r}")
    return int(seed)

  def _fit_tasks(self, data: list[tuple[str, Any, Any, Any]], *, multitask: bool) -> None:
    """Prepares `(name, X, y, validation_data)` tasks, trains and keeps the fitted state."""
    seed = self._check_params()
    prepared = [fitting.prepare_task(
        name, x, y, validation_data=val, length=self.length, znorm=bool(self.znormalize),
        validation_fraction=float(self.validation_fraction), seed=seed, where=where)
        for name, x, y, val, where in data]
    prepared = fitting.with_model_channels(prepared)
    settings = dict(encoder=self._encoder_name(), multitask=multitask, preset=self.preset,
                    model_options=self.model_options, learning_rate=self.learning_rate,
                    weight_decay=self.weight_decay, seed=seed,
                    config_overrides=self.config_overrides,
                    write_curves=self.workdir is not None)
    batch_size, epochs = fitting.schedule(
        fitting.engine_config(**settings, epochs=1, batch_size=1), prepared,
        batch_size=self.batch_size, epochs=self.epochs)
    config = fitting.engine_config(**settings, epochs=epochs, batch_size=batch_size)
    tasks, history, record = fitting.train(config, prepared, self.workdir)
    fitting.warn_no_progress(prepared, tasks, history)
    # A refit needs held-out series of X to add back; with validation_data there are none.
    refit = _refit_mode(self._refit_default() if self.refit is None else self.refit)
    if not all(val is None for _, _, _, val, _ in data):
      refit = False
    dropped = []
    if refit:
      tasks, dropped = fitting.refit(config, prepared, tasks, self.workdir, history=history,
                                     average=refit == "average")
    # Which weights are kept (first run, refit or both), in the record saved with the estimator.
    record = {**record, "refit": refit, "refit_dropped": dropped}
    self._set_fitted(tasks, record, history)

  def _refit_default(self) -> bool | str:
    """`refit=None`: the single-task estimators' recipe default per encoder (`recipe.REFIT`)."""
    return recipe.REFIT[self._encoder_name()]

  def _set_schedule(self, config: dict[str, Any]) -> None:
    # The batch size and epochs trained with (chosen from the data when the parameters are
    # None), as the run's config records them.
    self.batch_size_ = int(config["batch_size"])
    self.epochs_ = int(config["num_epochs"])
    self.refit_ = _refit_mode(config.get("refit", False))  # False: saved before refits existed
    # Tasks whose refit failed its check on training data and kept the checkpoint alone.
    self.refit_dropped_ = tuple(config.get("refit_dropped", ()))

  # Fitted state <-> attributes (subclasses name them).
  def _set_fitted(self, tasks: list[fitting.FittedTask], config: dict[str, Any],
                  history: list[dict[str, Any]]) -> None:
    raise NotImplementedError

  def _fitted_tasks(self) -> list[fitting.FittedTask]:
    raise NotImplementedError

  def _proba(self, x: ArrayLike, task_id: int, *, name: str = "X") -> np.ndarray:
    tasks = self._fitted_tasks()
    t = tasks[task_id]
    xs = preprocess.preprocess(x, t.length, znorm=bool(self.znormalize), name=name,
                               channels=t.channels, model_channels=fitting.model_channels(tasks),
                               trained_length=t.trained_length)
    return fitting.predict_proba(self.config_, tuple(len(u.classes) for u in tasks), task_id,
                                 t, xs)

  def save(self, path: str | os.PathLike) -> pathlib.Path:
    """Saves the fitted estimator to directory `path` (see `mtl2d.estimators.persistence`).

    Returns:
      The path of the written `estimator.json`.
    """
    validation.check_is_fitted(self)
    return persistence.write(path, class_name=type(self).__name__,
                             params=self.get_params(deep=False), tasks=self._fitted_tasks(),
                             config=self.config_, history=self.history_)

  @classmethod
  def load(cls, path: str | os.PathLike) -> _Estimator:
    """Loads an estimator saved with `save`; it must be of this class."""
    est = load(path)
    if not isinstance(est, cls):
      raise ValueError(f"{path} holds a {type(est).__name__}, not a {cls.__name__}; use "
                       f"mtl2d.estimators.load({str(path)!r})")
    return est

  def export(self, path: str | os.PathLike,
             platforms: Sequence[str] = persistence.PLATFORMS) -> pathlib.Path:
    """Exports the inference function to directory `path`; load it with `mtl2d.exported.load`.

    The export runs with JAX and NumPy only (no mtl2d training code, no native CPU kernel),
    on the given platforms, for any batch size.

    Returns:
      The path of the written `model.json`.
    """
    validation.check_is_fitted(self)
    return persistence.export(path, class_name=type(self).__name__, tasks=self._fitted_tasks(),
                              config=self.config_, znorm=bool(self.znormalize),
                              platforms=platforms)

  def __sklearn_tags__(self):
    """Tags: univariate series (2-D input), no NaN, no sparse input."""
    tags = super().__sklearn_tags__()
    tags.input_tags.allow_nan = False
    tags.input_tags.sparse = False
    return tags


class _SingleTaskClassifier(base.ClassifierMixin, _Estimator):
  """A single-task classifier (one model, ordinary shuffled mini-batches)."""

  def __init__(self, *, preset: str = recipe.PRESET, model_options: dict | None = None,
               epochs: int | None = None, batch_size: int | None = None,
               learning_rate: float = recipe.LEARNING_RATE,
               weight_decay: float = 0.01, validation_fraction: float = 0.25,
               random_state: int | None = 0, znormalize: bool = True,
               length: int | None = None, refit: bool | None = None,
               workdir: str | None = None, config_overrides: dict | None = None):
    """Stores the settings (validated by `fit`).

    The defaults are Table I's CPU recipe (`mtl2d.train.recipe`): the "quick" preset (for
    ResNet2D with 3 stride-2 stages, 16 templates and 10% window slicing), AdamW at 1e-3 with a
    cosine schedule, per-task batch-norm statistics; batch size and epochs sized to the data.

    Args:
      preset: model size, "quick" (CPU-sized), "paper" (the paper's sizes, for GPU/TPU) or
        "tiny" (tests); see `mtl2d.models.factory.PRESETS`. With "quick" the encoder's recipe
        fields apply under `model_options`.
      model_options: preset fields to replace, e.g. `{"num_templates": 32}`.
      epochs: training epochs (paper: 400). None: the recipe's 40, raised until training
        makes `recipe.MIN_TRAIN_STEPS` (300) optimizer steps; fitted as `epochs_`.
      batch_size: mini-batch size (paper: 40). None: a quarter of the training series, at
        least 8 and at most 40 (`recipe.small_data_batch_size`); fitted as `batch_size_`.
      learning_rate: AdamW learning rate (paper: 1e-4; the recipe's 1e-3, cosine schedule).
      weight_decay: AdamW decoupled weight decay.
      validation_fraction: share of the training data held out (stratified) to select the
        best epoch, in (0, 0.5); 0.25 is the paper's 60/20 train/validation ratio. Unused
        when `fit` gets `validation_data`.
      random_state: seed of the validation split, the initialisation and the batch order
        (the engine's `seed`); None draws one.
      znormalize: z-normalise every series (after resampling), at fit and predict time.
      length: the model's series length; None means the longest training series, at most
        128 steps (`recipe.MAX_LENGTH`, Table I's quick scale; longer series are resampled to
        it, chosen on validation in docs/estimators.md). Set it to keep longer series whole.
      refit: after the epoch is chosen on the held-out share, True trains again on all of
        `(X, y)` (the same schedule, stopped at that epoch) and keeps those weights
        (`mtl2d.estimators.fitting.refit`; about 1.5-2 times the training time); "average"
        does the same and keeps both models, the chosen checkpoint and the refit, predicting
        the mean of their class probabilities (the same training cost, twice the prediction
        cost); False keeps the chosen checkpoint. A refit that classifies the held-out
        series it trained on worse than the checkpoint did unseen is dropped (the checkpoint
        alone is kept; fitted as `refit_dropped_`). None: the encoder's default (`recipe.REFIT`:
        "average" for both encoders, chosen on a selection split in docs/estimators.md);
        fitted as `refit_`. No refit when `fit` gets `validation_data`.
      workdir: directory of the training run (config, metrics.jsonl, TensorBoard files,
        curves.png, checkpoints); a refit with the same data and settings resumes or reuses
        it, a different run there is refused. None trains in a temporary directory.
      config_overrides: further `mtl2d.train.base_config` fields by dotted name, e.g.
        `{"model.dtype": "bfloat16", "fast_compile": True}`.
    """
    self._store(locals())

  def fit(self, X: ArrayLike, y: ArrayLike, *,  # noqa: N803 (scikit-learn's names)
          validation_data: tuple[ArrayLike, ArrayLike] | None = None):
    """Trains on `(X, y)`; returns the fitted estimator.

    Args:
      X: `[N, length]` series (also `[N, 1, length]`) or a list of 1-D series.
      y: `[N]` labels (ints, strings, ...).
      validation_data: optional `(X_val, y_val)` for model selection instead of a held-out
        share of `(X, y)`.

    Raises:
      ValueError: bad settings or data (NaN/inf, empty series, one class, X and y of
        different lengths, ...); the message names the argument.
    """
    self._fit_tasks([(SINGLE_TASK_NAME, X, y, validation_data, "")], multitask=False)
    return self

  def _set_fitted(self, tasks, config, history):
    (t,) = tasks
    self._set_schedule(config)
    self.classes_ = t.classes
    self.length_ = t.length
    self.series_length_ = t.trained_length
    self.channels_ = t.channels
    self.best_epoch_ = t.best_epoch
    self.variables_ = t.variables
    self.ensemble_variables_ = t.ensemble
    self.config_ = config
    self.history_ = history

  def _fitted_tasks(self):
    validation.check_is_fitted(self)
    return [fitting.FittedTask(SINGLE_TASK_NAME, self.classes_, self.length_, self.best_epoch_,
                               self.variables_, channels=self.channels_,
                               series_length=getattr(self, "series_length_", None),
                               ensemble=tuple(getattr(self, "ensemble_variables_", ())))]

  def predict_proba(self, X: ArrayLike) -> np.ndarray:  # noqa: N803
    """Class probabilities `[N, len(classes_)]` (float64), columns in the order of `classes_`."""
    validation.check_is_fitted(self)
    return self._proba(X, 0)

  def predict_log_proba(self, X: ArrayLike) -> np.ndarray:  # noqa: N803
    """Log of `predict_proba`."""
    return np.log(self.predict_proba(X))

  def predict(self, X: ArrayLike) -> np.ndarray:  # noqa: N803
    """Predicted labels `[N]`, taken from `classes_`."""
    proba = self.predict_proba(X)
    return self.classes_[np.argmax(proba, axis=1)]

  def __sklearn_tags__(self):
    """Tags, with `poor_score`.

    scikit-learn's 0.83 accuracy bar is set on 2-feature blobs, which per-series
    z-normalisation reduces to two points, after a few epochs of training.
    """
    tags = super().__sklearn_tags__()
    tags.classifier_tags.poor_score = True
    return tags


class ResNet1DClassifier(_SingleTaskClassifier):
  """ResNet1D (Wang et al. 2017; the paper's Figure 2b) as a scikit-learn classifier.

  Fitted attributes: `classes_` (the labels, sorted), `length_` (series length of the model),
  `series_length_` (the longest training series, resampled to `length_`; predicting series
  of another length warns), `channels_` (of the series), `batch_size_` and `epochs_` (as
  trained), `best_epoch_` (the chosen epoch), `refit_` (True: the kept weights come from the
  refit on all training series; "average": from it and the best epoch's checkpoint, whose
  probabilities are averaged; False: from the best epoch's checkpoint), `refit_dropped_`
  (the tasks whose refit failed its check on training data and kept the checkpoint alone),
  `variables_` (parameters and batch-norm statistics), `ensemble_variables_` (the further
  models averaged with `variables_`: with `refit_="average"` the best epoch's checkpoint, else
  none), `config_` (the engine config with the run's `resolved` section, which records the
  model fields), `history_` (per-epoch records of the run).
  """

  _encoder = "resnet1d"


class ResNet2DClassifier(_SingleTaskClassifier):
  """ResNet2D with learnable templates (the paper's Figure 3) as a scikit-learn classifier.

  Fitted attributes: as `ResNet1DClassifier`.
  """

  _encoder = "resnet2d"


def _closest(name: Any, names: Sequence[str]) -> str:
  close = difflib.get_close_matches(str(name), list(names), n=3)
  return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


class MultiTaskClassifier(_Estimator):
  """ResNet1D or ResNet2D w/ MTL (Figures 2d, 3d): one shared encoder, one head per task.

  `fit` takes one `(X, y)` per task; the tasks' series lengths may differ (each task keeps
  its own length). Training follows Algorithm 2. For each task the kept model is the checkpoint
  of that task's best validation accuracy, so different tasks may use different epochs.

  Fitted attributes: `tasks_` (names, in task-id order), `classes_`, `lengths_`,
  `series_lengths_`, `channels_`, `best_epochs_`, `variables_` and `ensemble_variables_`
  (dicts by task name), `batch_size_`, `epochs_`, `refit_`, `refit_dropped_`, `config_`,
  `history_`.
  """

  def __init__(self, *, encoder: str = "resnet2d", preset: str = recipe.PRESET,
               model_options: dict | None = None, epochs: int | None = None,
               batch_size: int | None = None, learning_rate: float = recipe.LEARNING_RATE,
               weight_decay: float = 0.01,
               validation_fraction: float = 0.25, random_state: int | None = 0,
               znormalize: bool = True, length: int | None = None, refit: bool | None = None,
               workdir: str | None = None, config_overrides: dict | None = None):
    """Stores the settings (validated by `fit`).

    Args:
      encoder: "resnet2d" (ResNet2D w/ MTL) or "resnet1d" (ResNet1D w/ MTL).
      preset: as for `ResNet2DClassifier`.
      model_options: as for `ResNet2DClassifier`.
      epochs: as for `ResNet2DClassifier`.
      batch_size: as for `ResNet2DClassifier` (None: chosen from the smallest task's training
        series); every batch holds series of one task.
      learning_rate: as for `ResNet2DClassifier`.
      weight_decay: as for `ResNet2DClassifier`.
      validation_fraction: as for `ResNet2DClassifier`, per task.
      random_state: as for `ResNet2DClassifier`.
      znormalize: as for `ResNet2DClassifier`.
      length: one series length for every task; None keeps each task's longest series, at
        most 128 steps (`recipe.MAX_LENGTH`), as for `ResNet2DClassifier`.
      refit: as for `ResNet2DClassifier` (every task trained again on all its series, each
        task keeping the weights of its own chosen epoch), but None means no refit: it was
        measured for the single-task estimators only.
      workdir: as for `ResNet2DClassifier`.
      config_overrides: as for `ResNet2DClassifier`.
    """
    self._store(locals())

  def _refit_default(self) -> bool:
    return False

  def _encoder_name(self) -> str:
    if self.encoder not in ("resnet1d", "resnet2d"):
      raise ValueError(f"encoder must be 'resnet1d' or 'resnet2d', got {self.encoder!r}")
    return self.encoder

  @staticmethod
  def _named(what: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
      return [(k, v) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
      return [(f"task_{i}", v) for i, v in enumerate(value)]
    raise ValueError(f"{what} must map task names to (X, y) pairs, or be a list of (X, y) "
                     f"pairs; got {type(value).__name__}")

  def fit(self, tasks: Mapping[str, tuple[ArrayLike, ArrayLike]] | Sequence[tuple],
          *, validation_data: Mapping[str, tuple[ArrayLike, ArrayLike]] | Sequence | None = None):
    """Trains one model on all tasks; returns the fitted estimator.

    Args:
      tasks: task name -> `(X, y)` (as for `ResNet2DClassifier.fit`), or a list of `(X, y)`
        pairs (named "task_0", "task_1", ...). The order gives the task ids.
      validation_data: optional, per task (same names, or a list in the same order), an
        `(X_val, y_val)` pair used for model selection instead of a held-out share.

    Raises:
      ValueError: bad settings or data; the message names the task and the argument.
    """
    named = self._named("tasks", tasks)
    if not named:
      raise ValueError("tasks is empty; pass at least one (X, y) pair")
    names = [n for n, _ in named]
    if any(not isinstance(n, str) or not n for n in names):
      raise ValueError(f"tasks: task names must be non-empty strings, got {names}")
    if len(set(names)) != len(names):
      raise ValueError(f"tasks: duplicate task names {names}")
    vals: dict[str, Any] = {}
    if validation_data is not None:
      v_named = self._named("validation_data", validation_data)
      if isinstance(validation_data, Mapping):
        unknown = [n for n, _ in v_named if n not in names]
        if unknown:
          raise ValueError(f"validation_data: unknown task {unknown[0]!r}; tasks are {names}"
                           f"{_closest(unknown[0], names)}")
        vals = dict(v_named)
      else:
        if len(v_named) != len(named):
          raise ValueError(f"validation_data holds {len(v_named)} pairs for {len(named)} tasks")
        vals = {n: v for n, (_, v) in zip(names, v_named)}
    data = []
    for name, pair in named:
      where = f"tasks[{name!r}] "
      if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{where}must be an (X, y) pair, got {type(pair).__name__}")
      data.append((name, pair[0], pair[1], vals.get(name), where))
    self._fit_tasks(data, multitask=True)
    return self

  def _set_fitted(self, tasks, config, history):
    self._set_schedule(config)
    self.tasks_ = tuple(t.name for t in tasks)
    self.classes_ = {t.name: t.classes for t in tasks}
    self.lengths_ = {t.name: t.length for t in tasks}
    self.series_lengths_ = {t.name: t.trained_length for t in tasks}
    self.channels_ = {t.name: t.channels for t in tasks}
    self.best_epochs_ = {t.name: t.best_epoch for t in tasks}
    self.variables_ = {t.name: t.variables for t in tasks}
    self.ensemble_variables_ = {t.name: t.ensemble for t in tasks}
    self.config_ = config
    self.history_ = history

  def _fitted_tasks(self):
    validation.check_is_fitted(self)
    series = getattr(self, "series_lengths_", {})
    ensemble = getattr(self, "ensemble_variables_", {})
    return [fitting.FittedTask(n, self.classes_[n], self.lengths_[n], self.best_epochs_[n],
                               self.variables_[n], channels=self.channels_[n],
                               series_length=series.get(n), ensemble=tuple(ensemble.get(n, ())))
            for n in self.tasks_]

  def _task_id(self, task: Any) -> int:
    validation.check_is_fitted(self)
    if task not in self.tasks_:
      raise ValueError(f"task {task!r} is not one of the fitted tasks {list(self.tasks_)}"
                       f"{_closest(task, self.tasks_)}")
    return self.tasks_.index(task)

  def predict_proba(self, X: ArrayLike, *, task: str) -> np.ndarray:  # noqa: N803
    """Class probabilities `[N, len(classes_[task])]` of series of task `task`."""
    task_id = self._task_id(task)
    return self._proba(X, task_id)

  def predict(self, X: ArrayLike, *, task: str) -> np.ndarray:  # noqa: N803
    """Predicted labels `[N]` of series of task `task`."""
    proba = self.predict_proba(X, task=task)
    return self.classes_[task][np.argmax(proba, axis=1)]

  def score(self, X: ArrayLike, y: ArrayLike, *, task: str) -> float:  # noqa: N803
    """Accuracy on `(X, y)` of task `task`."""
    pred = self.predict(X, task=task)
    y = validation.column_or_1d(y)
    if len(y) != len(pred):
      raise ValueError(f"X holds {len(pred)} series but y holds {len(y)} labels; they must "
                       f"match")
    return float(np.mean(pred == y))


_CLASSES = {c.__name__: c for c in (ResNet1DClassifier, ResNet2DClassifier, MultiTaskClassifier)}


def load(path: str | os.PathLike) -> _Estimator:
  """Loads an estimator saved with `save` (any of this module's classes).

  Raises:
    ValueError: no saved estimator at `path`, another format, or an unknown class.
  """
  class_name, params, tasks, config, history = persistence.read(path)
  if class_name not in _CLASSES:
    raise ValueError(f"{path} holds an estimator of class {class_name!r}, not one of "
                     f"{sorted(_CLASSES)}")
  est = _CLASSES[class_name](**params)
  est._set_fitted(tasks, config, history)
  return est
