"""Input validation and preprocessing shared by the estimators and exported models.

The exported models' loader is tested end to end, in a fresh process, in
tests/estimators/persistence_test.py (it needs a trained model).
"""

import json
import warnings

import numpy as np
import pytest

from mtl2d import exported
from mtl2d import files
from mtl2d.data import ucr


def test_preprocess_matches_the_ucr_loader_bit_for_bit():
  rng = np.random.default_rng(0)
  series = [rng.normal(size=n) * 3 + 1 for n in (1, 7, 30, 19, 30)]
  padded = np.full((len(series), 30), np.nan)
  for i, s in enumerate(series):
    padded[i, :len(s)] = s
  for length in (None, 12, 45):
    target = 30 if length is None else length
    reference = ucr.znormalize(ucr.to_fixed_length(padded, length)).astype(np.float32)
    np.testing.assert_array_equal(exported.preprocess(series, target), reference)
  # Equal lengths: nothing is resampled; without z-normalisation values pass unchanged.
  x = rng.normal(size=(4, 9))
  np.testing.assert_array_equal(exported.preprocess(x, 9, znorm=False), x.astype(np.float32))
  np.testing.assert_array_equal(exported.preprocess(x[:, None, :], 9, znorm=False),
                                x.astype(np.float32))  # [N, 1, length] layout


def test_as_series_accepts_arrays_lists_and_ragged_lists():
  x = np.arange(12.0).reshape(3, 4)
  for given in (x, x.tolist(), x.astype(np.int32), x.astype(object), list(x)):
    out = exported.as_series(given)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_array_equal(out, x)
  ragged = exported.as_series([[1, 2, 3], np.array([4.0]), np.array([[5.0, 6.0]])])
  assert [s.tolist() for s in ragged] == [[1, 2, 3], [4], [5, 6]]


@pytest.mark.parametrize("given, error, match", [
    (None, ValueError, "X is None"),
    (np.zeros(5), ValueError, "Reshape your data"),
    (np.zeros((0, 5)), ValueError, "holds no series"),
    (np.zeros((3, 0)), ValueError, r"0 feature\(s\) \(shape=\(3, 0\)\)"),
    ([[1.0, 2.0], []], ValueError, r"X\[1\] is an empty series"),
    (np.array([[0.0, np.nan], [1.0, 2.0], [np.inf, 0.0]]), ValueError,
     r"NaN or inf values in series \[0, 2\]"),
    ([np.ones(3), np.array([1.0, np.nan])], ValueError, r"X\[1\] holds NaN or inf"),
    (np.ones((2, 3), complex), ValueError, "Complex data not supported"),
    ([["a", "b"], ["c", "d"]], ValueError, "must hold numbers"),
    ([np.ones((2, 4)), np.ones(4)], ValueError, r"X\[1\] has 1 channel\(s\), X\[0\] 2"),
    (np.zeros((2, 3, 4, 5)), ValueError, r"\[n_series, channels, length\]"),
    ([np.ones(3), {"a": 1}], TypeError, r"X\[1\] must hold numbers"),
])
def test_bad_series_are_refused_naming_the_argument(given, error, match):
  with pytest.raises(error, match=match):
    exported.as_series(given)


def test_object_array_with_non_numbers_gives_type_error():
  x = np.zeros((3, 2), object)
  x[0, 0] = {"foo": "bar"}
  with pytest.raises(TypeError, match="argument must be a string.* number"):
    exported.as_series(x, name="X_val")


def test_sparse_input_is_refused():
  sparse = pytest.importorskip("scipy.sparse")
  with pytest.raises(TypeError, match="sparse"):
    exported.as_series(sparse.csr_matrix(np.eye(3)))


def test_softmax_matches_a_plain_loop():
  z = np.array([[1.0, 2.0, 3.0], [-1e9, 0.0, 5.0]], np.float32)
  expected = np.array([[np.exp(v - max(row)) / sum(np.exp(u - max(row)) for u in row)
                        for v in row] for row in z.astype(np.float64)])
  np.testing.assert_allclose(exported.softmax(z), expected, rtol=1e-12, atol=0)


def test_load_refuses_missing_or_foreign_directories(tmp_path):
  with pytest.raises(ValueError, match="holds no exported model"):
    exported.load(tmp_path)
  (tmp_path / "model.json").write_text(json.dumps({"format": "other", "version": 1}))
  with pytest.raises(ValueError, match="format 'other'"):
    exported.load(tmp_path)
  (tmp_path / "model.json").write_text(json.dumps(
      {"format": exported.FORMAT, "version": 1, "platforms": ["cpu"],  # before checksums
       "tasks": [{"name": "t", "file": "task_0.jaxexport"}]}))
  with pytest.raises(ValueError, match="'task_0.jaxexport' of task 't', which is missing"):
    exported.load(tmp_path)


def _program(custom_call=None):
  """A tiny exported program: `[batch, 4]` -> 2 logits; optionally through a custom call."""
  import jax
  from jax import export as jax_export

  def logits(x):
    if custom_call is not None:
      x = jax.ffi.ffi_call(custom_call, jax.ShapeDtypeStruct(x.shape, x.dtype))(x)
    return x[:, :2] * 2.0

  checks = [jax_export.DisabledSafetyCheck.custom_call(custom_call)] if custom_call else []
  batch = jax_export.symbolic_shape("batch")[0]
  return jax_export.export(jax.jit(logits), platforms=("cpu",), disabled_checks=checks)(
      jax.ShapeDtypeStruct((batch, 4), np.float32)).serialize()


def _save(directory, program=None, classes=("no", "yes")):
  task = {"name": "t", "length": 4, "znormalize": False, "classes": np.array(classes),
          "program": program or _program()}
  return exported.save(directory, [task], estimator="Test", platforms=("cpu",),
                       mtl2d_version="test")


X = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], np.float32)


def test_a_changed_byte_or_label_is_refused_naming_the_file(tmp_path):
  # Before: a flipped byte loaded silently, and swapped classes flipped every label.
  _save(tmp_path / "m")
  assert exported.load(tmp_path / "m").predict(X).tolist() == ["yes", "no"]
  meta = (tmp_path / "m" / "model.json").read_text()
  (tmp_path / "m" / "model.json").write_text(meta.replace('"no",', '"tmp",').replace(
      '"yes"', '"no"').replace('"tmp"', '"yes"'))
  with pytest.raises(ValueError, match=r"m/model.json does not match its SHA-256"):
    exported.load(tmp_path / "m")
  (tmp_path / "m" / "model.json").write_text(meta)
  program = bytearray((tmp_path / "m" / "task_0.jaxexport").read_bytes())
  program[len(program) // 2] ^= 1
  (tmp_path / "m" / "task_0.jaxexport").write_bytes(bytes(program))
  with pytest.raises(ValueError, match=r"m/task_0.jaxexport does not match its SHA-256"):
    exported.load(tmp_path / "m")
  (tmp_path / "m" / "SHA256SUMS").unlink()
  with pytest.raises(ValueError, match="has no SHA256SUMS"):
    exported.load(tmp_path / "m")


@pytest.mark.parametrize("name", ["../outside.jaxexport", "/tmp/outside.jaxexport"])
def test_file_names_that_leave_the_directory_are_refused(tmp_path, name):
  _save(tmp_path / "m")
  outside = tmp_path / "outside.jaxexport"
  outside.write_bytes((tmp_path / "m" / "task_0.jaxexport").read_bytes())
  meta = json.loads((tmp_path / "m" / "model.json").read_text())
  meta["tasks"][0]["file"] = name
  (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
  files.write_checksums(tmp_path / "m", ["model.json", "task_0.jaxexport"])  # consistent sums
  with pytest.raises(ValueError, match=r"only names inside"):
    exported.load(tmp_path / "m")
  (tmp_path / "m" / "SHA256SUMS").write_text(
      f"{files.sha256(outside)}  ../outside.jaxexport\n")
  with pytest.raises(ValueError, match=r"only names inside"):
    exported.load(tmp_path / "m")


def test_overwriting_an_export_is_all_or_nothing(tmp_path, monkeypatch):
  # Before: interrupted before the metadata rename, the directory held model A's labels with
  # model B's program.
  _save(tmp_path / "m", classes=("a0", "a1"))

  def interrupted(directory, names):
    raise KeyboardInterrupt

  with monkeypatch.context() as m:
    m.setattr(files, "write_checksums", interrupted)
    with pytest.raises(KeyboardInterrupt):
      _save(tmp_path / "m", classes=("b0", "b1"))
  assert exported.load(tmp_path / "m").predict(X).tolist() == ["a1", "a0"]
  _save(tmp_path / "m", classes=("b0", "b1"))
  assert exported.load(tmp_path / "m").predict(X).tolist() == ["b1", "b0"]
  assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match="holds other files"):
    _save(tmp_path / "other")
  assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_custom_calls_outside_jax_s_stable_list_need_an_opt_in(tmp_path):
  # Before: load ran any serialized program (JAX checks the list only when exporting).
  _save(tmp_path / "m", program=_program(custom_call="mtl2d_test_untrusted"))
  with pytest.raises(ValueError, match=r"task_0.jaxexport calls custom calls outside JAX's "
                                       r"stable list: \['mtl2d_test_untrusted'\]"):
    exported.load(tmp_path / "m")
  assert exported.load(tmp_path / "m", allow_custom_calls=True).tasks == ("t",)
  assert "shape_assertion" in exported.STABLE_CUSTOM_CALLS


def test_multivariate_series_in_the_models_layout():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 3, 10)) * np.array([1.0, 10.0, 100.0])[:, None] + 5.0
  series = exported.as_series(x)
  assert series.shape == (4, 3, 10) and exported.num_channels(series) == 3
  out = exported.model_input(series, 10)
  assert out.shape == (4, 10, 3) and out.dtype == np.float32  # channels last
  for c in range(3):  # every channel z-normalised on its own, as a univariate series
    np.testing.assert_allclose(out[..., c], exported.model_input(x[:, c], 10), atol=1e-6)
  # Ragged [channels, length] series: each channel resampled like a univariate series.
  ragged = exported.as_series([x[0][:, :7], x[1]])
  out = exported.model_input(ragged, 10, znorm=False)
  np.testing.assert_allclose(out[0, :, 2], exported.resample(x[0, 2, :7], 10), rtol=1e-6)
  # A model of more channels (multitask): missing channels are zeros.
  padded = exported.model_input(exported.as_series(x[:, 0]), 10, channels=3)
  assert padded.shape == (4, 10, 3) and not padded[..., 1:].any()
  np.testing.assert_array_equal(padded[..., 0], exported.model_input(x[:, 0], 10))


def test_nested_frames():
  # A nested frame (sktime's layout: one series per cell, a column per channel) reaches
  # as_series as an object array of series; pandas itself is optional.
  rng = np.random.default_rng(1)
  x = rng.normal(size=(3, 2, 6))
  cells = np.empty((3, 2), object)
  for i in range(3):
    for c in range(2):
      cells[i, c] = x[i, c].tolist() if c else x[i, c]
  np.testing.assert_array_equal(exported.as_series(cells), x)
  np.testing.assert_array_equal(exported.as_series(cells[:, :1]), x[:, 0])
  cells[1, 0] = x[1, 0, :4]
  with pytest.raises(ValueError, match=r"X\[1\]: a row of a nested frame holds channels of "
                                       r"different shapes"):
    exported.as_series(cells)
  pd = pytest.importorskip("pandas")
  frame = pd.DataFrame({f"dim_{c}": [pd.Series(x[i, c]) for i in range(3)] for c in range(2)})
  np.testing.assert_array_equal(exported.as_series(frame), x)
  one = pd.DataFrame({"dim_0": [pd.Series(x[i, 0]) for i in range(3)]})
  np.testing.assert_array_equal(exported.as_series(one), x[:, 0])
  bad = pd.DataFrame({"a": [pd.Series(x[0, 0]), pd.Series(x[1, 0, :4])],
                      "b": [pd.Series(x[0, 1]), pd.Series(x[1, 1])]})
  with pytest.raises(ValueError, match=r"X\[1\]: a row of a nested frame holds channels of "
                                       r"different shapes"):
    exported.as_series(bad)


def test_predicting_series_of_another_length_warns():
  x = np.random.default_rng(2).normal(size=(3, 12))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    exported.preprocess(x, 12)
  with pytest.warns(UserWarning, match="other than the training series' 9 are resampled to the "
                                       "model's 9 steps"):
    exported.preprocess(x, 9)
  # A model trained on series of 12 steps resampled to 9 (the estimators' length cap) takes
  # series of 12 steps silently, others with the warning.
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    exported.preprocess(x, 9, trained_length=12)
  with pytest.warns(UserWarning, match="other than the training series' 12 are resampled to "
                                       "the model's 9 steps"):
    exported.preprocess(x[:, :10], 9, trained_length=12)
  with pytest.raises(ValueError, match=r"X holds series of 1 channel\(s\); the model was "
                                       r"trained on 2"):
    exported.preprocess(x, 12, channels=2)
