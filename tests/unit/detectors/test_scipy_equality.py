"""Every method with a scipy counterpart equals scipy to 1e-9 (relative), as issue 4 asks.

The fast paths (KS and Wasserstein by binary search in the sorted reference, binned
shares counted by search) are checked on samples large enough to take them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from detectors import DriftOptions, ReferenceProfile, detect_drift
from detectors.columns import CategoricalWindow, NumericWindow
from detectors.numeric.ks import ks, ks_statistic
from detectors.numeric.wasserstein import wasserstein_distance
from detectors.profile import CategoricalProfile, NumericProfile

REL = 1e-9


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


def _close(ours: float | None, theirs: float) -> bool:
    assert ours is not None
    return math.isclose(ours, float(theirs), rel_tol=REL, abs_tol=1e-300)


def _samples(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "normal":
        return rng.normal(0, 1, 1500), rng.normal(0.15, 1.1, 700)
    if kind == "ties":
        return np.round(rng.normal(0, 1, 1500), 1), np.round(rng.normal(0.1, 1, 700), 1)
    if kind == "large":  # above scipy's exact-KS limit: the asymptotic, binary-search path
        return rng.gamma(2.0, 3.0, 60_000), rng.gamma(2.1, 3.0, 12_000)
    return np.round(rng.lognormal(0, 1, 30_000), 2), np.round(rng.lognormal(0.05, 1, 11_000), 2)


KINDS = ["normal", "ties", "large", "large_ties"]


@pytest.mark.parametrize("kind", KINDS)
def test_ks_equals_scipy(rng: np.random.Generator, kind: str) -> None:
    ref, cur = _samples(rng, kind)
    statistic, p_value = ks(NumericProfile.fit(ref), NumericWindow.of(cur))
    expected = stats.ks_2samp(ref, cur)
    assert _close(statistic, expected.statistic)
    assert _close(p_value, expected.pvalue)
    # The binary-search statistic is scipy's even where scipy would compute exactly.
    asymptotic = stats.ks_2samp(ref, cur, method="asymp")
    assert ks_statistic(NumericProfile.fit(ref), NumericWindow.of(cur)) == pytest.approx(
        asymptotic.statistic, rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_wasserstein_equals_scipy(rng: np.random.Generator, kind: str) -> None:
    ref, cur = _samples(rng, kind)
    ours = wasserstein_distance(NumericProfile.fit(ref), NumericWindow.of(cur))
    assert _close(ours, stats.wasserstein_distance(ref, cur))
    report = detect_drift(ReferenceProfile.fit(pd.DataFrame({"x": ref})), pd.DataFrame({"x": cur}),
                          DriftOptions(numeric_method="wasserstein"))
    assert _close(report.features["x"].statistic,
                  stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001))


@pytest.mark.parametrize("kind", ["normal", "ties"])
@pytest.mark.parametrize(("method", "scipy_call"), [
    ("t_test", lambda r, c: stats.ttest_ind(r, c)),
    ("mannwhitney", lambda r, c: stats.mannwhitneyu(r, c, alternative="two-sided")),
    ("cramer_von_mises", lambda r, c: stats.cramervonmises_2samp(r, c)),
    ("anderson", lambda r, c: stats.anderson_ksamp([r, c])),
])
def test_numeric_tests_equal_scipy(rng: np.random.Generator, kind: str, method: str,
                                   scipy_call: object) -> None:
    ref, cur = _samples(rng, kind)
    with warnings.catch_warnings():
        # scipy's anderson_ksamp warns about its `midrank` -> `variant` rename and capped p.
        warnings.simplefilter("ignore")
        expected = scipy_call(ref, cur)  # type: ignore[operator]
    result = _run(ref, cur, "numeric", method)
    assert _close(result.statistic, expected.statistic)
    assert _close(result.p_value, expected.pvalue)


def _run(ref: np.ndarray, cur: np.ndarray, kind: str, method: str):  # type: ignore[no-untyped-def]
    profile = ReferenceProfile.fit(pd.DataFrame({"x": ref}), schema={"x": kind})
    options = DriftOptions(methods={"x": method})
    return detect_drift(profile, pd.DataFrame({"x": cur}), options).features["x"]


@pytest.mark.parametrize("kind", KINDS)
def test_energy_equals_scipy(rng: np.random.Generator, kind: str) -> None:
    ref, cur = _samples(rng, kind)
    assert _close(_run(ref, cur, "numeric", "energy").statistic, stats.energy_distance(ref, cur))


@pytest.mark.parametrize("kind", ["large", "large_ties"])
def test_binned_distances_equal_scipy_on_numpy_histograms(rng: np.random.Generator,
                                                          kind: str) -> None:
    ref, cur = _samples(rng, kind)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(cur, edges)[0] / cur.size
    js = _run(ref, cur, "numeric", "jensenshannon").statistic
    assert _close(js, distance.jensenshannon(p, q))
    floor_p, floor_q = (np.where(s == 0, 1e-4 if s[s > 0].min() > 1e-4 else s[s > 0].min() / 1e6,
                                 s) for s in (p, q))
    assert _close(_run(ref, cur, "numeric", "kl_div").statistic, stats.entropy(floor_p, floor_q))


def _categories(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ref = rng.choice(list("abcdef"), 3000, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    cur = rng.choice(list("abcdef"), 900, p=[0.25, 0.25, 0.2, 0.15, 0.1, 0.05])
    return ref, cur


def _counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(ref) | set(cur))
    return (np.array([np.sum(ref == k) for k in keys]), np.array([np.sum(cur == k) for k in keys]))


def test_chisquare_and_g_test_equal_scipy(rng: np.random.Generator) -> None:
    ref, cur = _categories(rng)
    r, c = _counts(ref, cur)
    expected = r * c.sum() / r.sum()
    chi = _run(ref, cur, "categorical", "chisquare")
    want = stats.chisquare(c, expected)
    assert _close(chi.statistic, want.statistic)
    assert _close(chi.p_value, want.pvalue)
    g = _run(ref, cur, "categorical", "g_test")
    want = stats.power_divergence(c, expected, lambda_="log-likelihood")
    assert _close(g.statistic, want.statistic)
    assert _close(g.p_value, want.pvalue)


def test_fisher_exact_equals_scipy_on_the_2x2_table(rng: np.random.Generator) -> None:
    ref = rng.choice(["no", "yes"], 400, p=[0.8, 0.2])
    cur = rng.choice(["no", "yes"], 150, p=[0.7, 0.3])
    r, c = _counts(ref, cur)
    want = stats.fisher_exact([[c[0], c[1]], [r[0], r[1]]])
    result = _run(ref, cur, "categorical", "fisher_exact")
    assert _close(result.statistic, want.statistic)
    assert _close(result.p_value, want.pvalue)


def test_cramers_v_equals_scipy(rng: np.random.Generator) -> None:
    ref, cur = _categories(rng)
    r, c = _counts(ref, cur)
    want = stats.contingency.association(np.vstack([r, c]), method="cramer")
    assert _close(_run(ref, cur, "categorical", "chisquare").effect_size, want)


def test_cohens_d_matches_its_definition(rng: np.random.Generator) -> None:
    ref, cur = _samples(rng, "normal")
    pooled = np.sqrt(((ref.size - 1) * ref.var(ddof=1) + (cur.size - 1) * cur.var(ddof=1))
                     / (ref.size + cur.size - 2))
    assert _close(_run(ref, cur, "numeric", "ks").effect_size, (cur.mean() - ref.mean()) / pooled)


def test_categorical_windows_count_like_pandas(rng: np.random.Generator) -> None:
    values = pd.Series(rng.choice(["x", "y", None, "z"], 500)).astype(object)
    window = CategoricalWindow.of(values)
    expected = values.dropna().value_counts().sort_index()
    assert list(window.categories) == list(expected.index)
    assert window.counts.tolist() == expected.tolist()
    profile = CategoricalProfile.fit(values)
    assert profile.n == int(expected.sum())


@pytest.mark.slow
def test_fast_paths_equal_scipy_at_benchmark_size(rng: np.random.Generator) -> None:
    # The benchmark's shape: 1M reference values against a 100k window.
    ref = rng.normal(0, 1, 1_000_000)
    cur = rng.normal(0.01, 1, 100_000)
    profile, window = NumericProfile.fit(ref), NumericWindow.of(cur)
    statistic, p_value = ks(profile, window)
    expected = stats.ks_2samp(ref, cur)
    assert _close(statistic, expected.statistic)
    assert _close(p_value, expected.pvalue)
    assert _close(wasserstein_distance(profile, window), stats.wasserstein_distance(ref, cur))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n_reference", "n_current"), [
    (60_000, 400),  # a window under a fiftieth of the reference: binary search, prefix sums
    (60_000, 12_000),  # larger windows: the quantile functions' merged grids
    (5_000, 20_000),  # a window larger than the reference
])
def test_both_wasserstein_paths_equal_scipy(rng: np.random.Generator, ties: bool,
                                            n_reference: int, n_current: int) -> None:
    from detectors.numeric import wasserstein

    ref = rng.gamma(2.0, 3.0, n_reference)
    cur = rng.gamma(2.2, 3.0, n_current)
    if ties:
        ref, cur = np.round(ref, 1), np.round(cur, 1)
    profile, window = NumericProfile.fit(ref), NumericWindow.of(cur)
    expected = stats.wasserstein_distance(ref, cur)
    assert _close(wasserstein_distance(profile, window), expected)
    # Each path on its own, whichever the sizes pick.
    assert _close(wasserstein._by_search(profile, window), expected)
    assert _close(wasserstein._by_quantiles(profile.values, window.sorted), expected)
