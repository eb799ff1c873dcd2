"""The estimators-vs-1NN-DTW evaluation: problems, the 1NN-DTW baseline and the table."""

import types

import numpy as np
import pytest

from mtl2d.bench import estimators as bench


def test_bumps_and_one_nn_dtw():
  x, y, xt, yt = bench.draw("bumps", 0, None, 40)
  assert x.shape == (50, 150) and xt.shape == (40, 150)
  assert set(np.bincount(y)) == {25}
  pred = bench.one_nn_dtw(x, y, xt, seed=0)
  assert pred.shape == (40,) and np.mean(pred == yt) > 0.5


def test_table_means_and_differences():
  rows = [{"problem": p, "seed": s, "train": 50, "test": 40, "classes": 2, "length": 150,
           "accuracy": {"1nn_dtw": a, "resnet2d": b}, "wall_s": {"resnet2d": 10.0 + s},
           "cpu_s": {"resnet2d": 20.0}}
          for p, s, a, b in (("a", 0, 0.5, 0.75), ("a", 1, 0.7, 0.75), ("b", 0, 0.9, 0.8))]
  table = bench.format_table(rows, ["1nn_dtw", "resnet2d"]).splitlines()
  assert table[2] == "| a | 50 / 40, 2, 150 | 2 | 0.600 | 0.750 | +0.150 | 11 / 20 |"
  assert table[3] == "| b | 50 / 40, 2, 150 | 1 | 0.900 | 0.800 | -0.100 | 10 / 20 |"
  assert table[4] == "| **mean** |  |  | **0.750** | **0.775** | +0.025 |  |"


def test_minirocket_needs_aeon_or_learns_bumps():
  x, y, xt, yt = bench.draw("bumps", 0, None, 40)
  try:
    import aeon  # noqa: F401
  except ImportError:
    with pytest.raises(ImportError, match=r"minirocket method needs aeon: pip install"):
      bench.minirocket(x, y, xt, seed=0)
    return
  pred = bench.minirocket(x, y, xt, seed=0)
  assert pred.shape == (40,) and np.mean(pred == yt) > 0.8


def test_unknown_method_is_refused():
  with pytest.raises(SystemExit):
    bench.main(["--problems=bumps", "--methods=rocket9"])


def test_table_validation_columns():
  rows = [{"problem": p, "seed": s, "train": 50, "test": 40, "classes": 2, "length": 150,
           "accuracy": {"1nn_dtw": 0.5, "resnet2d": 0.75}, "val": {"resnet2d": v},
           "wall_s": {"resnet2d": 10.0}, "cpu_s": {"resnet2d": 20.0}}
          for p, s, v in (("a", 0, 0.6), ("a", 1, 0.8), ("b", 0, 0.9))]
  table = bench.format_table(rows, ["1nn_dtw", "resnet2d"]).splitlines()
  assert table[0].endswith(
      "| resnet2d - 1nn_dtw | resnet2d val | resnet2d fit s wall / CPU (max) |")
  assert table[2] == "| a | 50 / 40, 2, 150 | 2 | 0.500 | 0.750 | +0.250 | 0.700 | 10 / 20 |"
  assert table[4] == "| **mean** |  |  | **0.500** | **0.750** | +0.250 | **0.800** |  |"


def test_validation_accuracy_is_the_reported_epochs():
  history = [{"epoch": 1, "mean_val_accuracy": 0.25}, {"epoch": 2, "mean_val_accuracy": 0.75},
             {"epoch": 3, "mean_val_accuracy": 0.5}]
  clf = types.SimpleNamespace(history_=history, best_epoch_=2)
  assert bench.validation_accuracy(clf) == 0.75
  with pytest.raises(ValueError, match="no validation record of epoch 7"):
    bench.validation_accuracy(types.SimpleNamespace(history_=history, best_epoch_=7))


def test_params_are_checked():
  assert bench.parse_params("", ["resnet2d"]) == {}
  assert bench.parse_params('{"length": 128}', ["1nn_dtw", "resnet2d", "resnet1d"]) == {
      "length": 128}
  with pytest.raises(ValueError, match=r"--params is not JSON"):
    bench.parse_params("length=128", ["resnet2d"])
  with pytest.raises(ValueError, match=r"--params must be a JSON object"):
    bench.parse_params("[128]", ["resnet2d"])
  with pytest.raises(ValueError, match=r"ResNet2DClassifier takes no \['lenght'\]"):
    bench.parse_params('{"lenght": 128}', ["resnet2d"])
  with pytest.raises(SystemExit):
    bench.main(["--problems=bumps", "--methods=resnet2d", '--params={"lenght": 1}'])


def test_selection_split_is_a_quarter_of_the_training_series_and_no_test_series():
  x, y, xt, _ = bench.draw("bumps", 0, None, 40)
  xf, yf, xs, ys = bench.draw("bumps", 0, None, 40, split="selection")
  assert (len(xf), len(xs)) == (38, 12)
  assert np.bincount(ys).tolist() == [6, 6]  # stratified
  # Both parts come from the training series; none from the test series.
  rows = {r.tobytes() for r in x}
  assert all(r.tobytes() in rows for r in np.concatenate([xf, xs]))
  assert not {r.tobytes() for r in xt} & {r.tobytes() for r in np.concatenate([xf, xs])}
  with pytest.raises(ValueError, match="split must be one of"):
    bench.draw("bumps", 0, None, 40, split="val")


def test_table_columns_of_the_models_of_an_averaged_fit():
  rows = [{"problem": "a", "seed": s, "train": 50, "test": 40, "classes": 2, "length": 150,
           "accuracy": {"1nn_dtw": 0.5, "resnet2d": 0.75, "resnet2d (refit alone)": r,
                        "resnet2d (checkpoint alone)": 0.5},
           "wall_s": {"resnet2d": 10.0}, "cpu_s": {"resnet2d": 20.0}}
          for s, r in ((0, 0.6), (1, 0.8))]
  table = bench.format_table(rows, ["1nn_dtw", "resnet2d"]).splitlines()
  assert table[0] == (
      "| problem | train / test, classes, length | seeds | 1nn_dtw | resnet2d | resnet2d (refit "
      "alone) | resnet2d (checkpoint alone) | resnet2d - 1nn_dtw | resnet2d (refit alone) - "
      "1nn_dtw | resnet2d (checkpoint alone) - 1nn_dtw | resnet2d fit s wall / CPU (max) |")
  assert table[2] == ("| a | 50 / 40, 2, 150 | 2 | 0.500 | 0.750 | 0.700 | 0.500 | +0.250 | "
                      "+0.200 | +0.000 | 10 / 20 |")


@pytest.mark.filterwarnings("ignore:.*training made no progress")
def test_member_accuracies_score_each_model_of_an_averaged_fit():
  from mtl2d import estimators  # noqa: PLC0415
  from tests.estimators import helpers  # noqa: PLC0415
  x, y = helpers.series(32, 16, seed=3)
  params = helpers.tiny("resnet1d", epochs=3, batch_size=8, learning_rate=3e-2)
  with helpers.refit_check_off():
    avg = estimators.ResNet1DClassifier(**params, refit="average").fit(x, y)
    one = estimators.ResNet1DClassifier(**params, refit=True).fit(x, y)
  plain = estimators.ResNet1DClassifier(**params, refit=False).fit(x, y)
  assert bench.member_accuracies(avg, x, y) == {"refit": one.score(x, y),
                                                "checkpoint": plain.score(x, y)}
  assert bench.member_accuracies(plain, x, y) == {}
  dropped = estimators.ResNet1DClassifier(**params, refit="average").fit(x, y)
  dropped.refit_dropped_, dropped.variables_, dropped.ensemble_variables_ = (
      ("task",), plain.variables_, ())
  assert bench.member_accuracies(dropped, x, y) == {"checkpoint": plain.score(x, y)}
