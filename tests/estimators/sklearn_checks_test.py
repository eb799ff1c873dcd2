"""scikit-learn's estimator checks on the single-task classifiers (tiny models, 1 epoch).

Every check of `sklearn.utils.estimator_checks` runs on `ResNet1DClassifier`. The classifiers
share all of their scikit-learn code and differ only in the encoder, so `ResNet2DClassifier`
runs the checks that exercise a trained model's numbers (refit, subsets, order, pickling,
label types, one-step series): its tiny model costs several times more to compile per series
length, and the full list on both would take several minutes on a 2-core CPU.

Checks that cannot pass are listed in `EXPECTED_FAILURES` with the reason; pytest reports
them as xfail (strict: one that starts passing fails the suite, so the list stays true).
"""

import pytest
from sklearn.utils import estimator_checks

from mtl2d import estimators
from tests.estimators import helpers

_RESAMPLED = ("series of another length are resampled to the model's length (the UCR "
              "loader's rule, applied at predict time too), so a different number of columns "
              "is not an error, and n_features_in_ is not set: a list of series of different "
              "lengths has no fixed feature count")
EXPECTED_FAILURES = {
    "check_n_features_in": _RESAMPLED,
    "check_n_features_in_after_fitting": _RESAMPLED,
    "check_classifiers_train": _RESAMPLED + " (its other assertions on predict and "
                               "predict_proba are covered in classifiers_test.py)",
}
RESNET2D_CHECKS = ("check_fit_idempotent", "check_methods_subset_invariance",
                   "check_methods_sample_order_invariance", "check_estimators_pickle",
                   "check_classifiers_classes", "check_fit2d_1feature", "check_dict_unchanged",
                   "check_estimators_unfitted")


@estimator_checks.parametrize_with_checks(
    [estimators.ResNet1DClassifier(**helpers.tiny("resnet1d", epochs=1))],
    expected_failed_checks=lambda est: EXPECTED_FAILURES, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
  check(estimator)


@pytest.mark.parametrize("check_name", RESNET2D_CHECKS)
def test_sklearn_checks_on_resnet2d(check_name):
  estimator = estimators.ResNet2DClassifier(**helpers.tiny("resnet2d", epochs=1))
  getattr(estimator_checks, check_name)(type(estimator).__name__, estimator)
