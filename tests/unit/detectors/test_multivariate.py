from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from detectors import OptionsError, PCAReconstruction, domain_classifier


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(77)


def _correlated(rng: np.random.Generator, n: int, link: float = 0.95) -> pd.DataFrame:
    a = rng.normal(size=n)
    b = link * a + math.sqrt(1 - link**2) * rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": b, "c": rng.choice(["x", "y", "z"], n)})


def test_domain_classifier_sees_a_joint_change_the_marginals_hide(
        rng: np.random.Generator) -> None:
    reference = _correlated(rng, 1500)
    same = _correlated(rng, 600)
    # Same marginals (a and b still standard normal), the correlation is gone.
    broken = _correlated(rng, 600, link=0.0)
    quiet = domain_classifier(reference, same)
    loud = domain_classifier(reference, broken)
    assert quiet.status == loud.status == "ok"
    assert not quiet.drifted
    assert loud.drifted
    assert loud.statistic is not None
    assert quiet.statistic is not None
    assert loud.statistic > 0.6 > quiet.statistic


def test_domain_classifier_handles_missing_and_unseen_values(rng: np.random.Generator) -> None:
    reference = _correlated(rng, 500)
    current = _correlated(rng, 300)
    current.loc[::3, "a"] = np.nan
    current.loc[::5, "c"] = "never seen"
    result = domain_classifier(reference, current)
    assert result.statistic is not None
    assert math.isfinite(result.statistic)


def test_domain_classifier_is_deterministic_and_checks_its_inputs(
        rng: np.random.Generator) -> None:
    reference, current = _correlated(rng, 400), _correlated(rng, 400, link=0.3)
    assert domain_classifier(reference, current) == domain_classifier(reference, current)
    assert domain_classifier(reference, current.iloc[:10]).status == "insufficient_data"
    with pytest.raises(OptionsError, match=r"0\.4"):
        domain_classifier(reference, current, threshold=0.4)


def test_pca_reconstruction_flags_a_broken_correlation(rng: np.random.Generator) -> None:
    pca = PCAReconstruction.fit(_correlated(rng, 5000), chunk_size=500)
    same = pca.detect(_correlated(rng, 500))
    broken = pca.detect(_correlated(rng, 500, link=0.0))
    assert not same.drifted
    assert broken.drifted
    assert broken.statistic is not None
    assert broken.statistic > broken.threshold
    assert same.lower_threshold is not None
    assert same.lower_threshold < same.threshold


def test_pca_reconstruction_degenerate_inputs(rng: np.random.Generator) -> None:
    pca = PCAReconstruction.fit(pd.DataFrame({"a": [1.0] * 200, "b": [np.nan] * 200}))
    result = pca.detect(pd.DataFrame({"a": [1.0] * 100, "b": [2.0] * 100}))
    assert result.statistic is None or math.isfinite(result.statistic)
    assert pca.detect(pd.DataFrame({"a": [1.0] * 5})).status == "insufficient_data"
    empty = PCAReconstruction.fit(pd.DataFrame({"a": [1.0]}))
    assert empty.detect(pd.DataFrame({"a": rng.normal(size=100)})).status == "insufficient_data"
    with pytest.raises(OptionsError, match="variance"):
        PCAReconstruction.fit(_correlated(rng, 100), variance=1.5)
