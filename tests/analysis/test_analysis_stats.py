"""Statistics: quantiles with +inf, summaries, ranks, Friedman, Nemenyi (Demšar 2006's worked
example), Holm, Wilcoxon-Holm, comparisons with the best, CD cliques."""

import math

import numpy as np
import pandas as pd
import pytest

from mfbo.analysis import (compare_to_best, final_values, friedman, holm, load_study, metric_curves, nemenyi_cd,
                           pairwise_wilcoxon_holm, rank_curves, score_matrix, summarise, summarise_curves)
from mfbo.analysis.stats import (cd_cliques, friedman_chi2_from_ranks, grouped_summaries, iman_davenport, nemenyi_q,
                                 quantile)

inf = math.inf

#: Demšar (2006), Section 3.2.4: average ranks of C4.5, C4.5+m, C4.5+cf, C4.5+m+cf on 14 data sets.
DEMSAR_RANKS = [3.143, 2.000, 2.893, 1.964]


def test_quantile_and_summarise_with_inf():
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.25) == 1.75
    assert quantile([1.0, inf], 0.5) == inf and quantile([inf, inf], 0.25) == inf and quantile([1.0, 2.0, inf], 0.25) == 1.5
    assert math.isnan(quantile([math.nan], 0.5))
    s = summarise([1.0, 2.0, 3.0, 6.0])
    assert (s["n"], s["mean"], s["median"], s["q25"], s["q75"]) == (4, 3.0, 2.5, 1.75, 3.75)
    assert math.isclose(s["se"], np.std([1, 2, 3, 6], ddof=1) / 2)
    assert summarise([1.0, inf])["mean"] == inf and math.isnan(summarise([1.0])["se"])


def test_grouped_summaries_equal_summarise_per_group():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 30, 300)
    values = rng.normal(size=300)
    values[rng.random(300) < 0.2] = inf
    values[rng.random(300) < 0.1] = math.nan
    grouped = grouped_summaries(codes, values, 31)  # group 30 is empty
    for g in range(31):
        expected = summarise(values[codes == g])
        for key, value in expected.items():
            assert value == pytest.approx(grouped[key][g], nan_ok=True), (g, key)


def test_nemenyi_matches_demsar_table_5():
    q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]  # k = 2..10
    # Demšar's table is given to 3 decimals from older tables (2.3437 is printed 2.343)
    assert np.allclose([nemenyi_q(k, 0.05) for k in range(2, 11)], q05, atol=1.1e-3)
    assert math.isclose(nemenyi_q(4, 0.10), 2.291, abs_tol=1.1e-3)
    # the worked example: k = 4 classifiers on N = 14 data sets
    assert round(nemenyi_cd(4, 14, 0.05), 2) == 1.25
    assert round(nemenyi_cd(4, 14, 0.10), 2) == 1.12
    with pytest.raises(ValueError, match="k"):
        nemenyi_q(1)


def test_friedman_and_iman_davenport_match_demsar_worked_example():
    chi2 = friedman_chi2_from_ranks(DEMSAR_RANKS, 14)
    assert round(chi2, 2) == 9.28
    ff, p = iman_davenport(chi2, 14, 4)
    assert round(ff, 2) == 3.69
    assert 0.01 < p < 0.05  # Demšar: F(3, 39) critical value at 0.05 is 2.85, so rejected


def test_cd_cliques_of_demsar_example_at_alpha_010():
    cd = nemenyi_cd(4, 14, 0.10)
    ranks = sorted(DEMSAR_RANKS)  # C4.5+m+cf, C4.5+m, C4.5+cf, C4.5
    cliques = cd_cliques(4, lambda i, j: abs(ranks[i] - ranks[j]) < cd)
    # C4.5 differs from C4.5+m and C4.5+m+cf; C4.5+cf differs from neither side
    assert cliques == [(0, 2), (2, 3)]
    assert cd_cliques(3, lambda i, j: False) == []
    assert cd_cliques(3, lambda i, j: True) == [(0, 2)]


def test_friedman_on_a_hand_computed_matrix():
    # rows rank the columns 1,2,3 / 1,3,2 / 1,2,3: R = (1, 7/3, 8/3)
    scores = pd.DataFrame([[0.1, 0.2, 0.3], [1.0, 3.0, 2.0], [5.0, 6.0, 7.0]], columns=["a", "b", "c"])
    result = friedman(scores)
    assert result.average_ranks == pytest.approx({"a": 1.0, "b": 7 / 3, "c": 8 / 3})
    assert math.isclose(result.chi2, 3.0 * (1 + 49 / 9 + 64 / 9 - 12))  # 12N/(k(k+1)) = 3
    assert math.isclose(result.iman_davenport, 2 * result.chi2 / (3 * 2 - result.chi2))
    assert math.isclose(result.p_value, math.exp(-result.chi2 / 2))  # chi2 with 2 dof
    with pytest.raises(ValueError, match="at least 3 strategies"):
        friedman(scores[["a", "b"]])


def test_friedman_ties_are_corrected():
    # one block all tied: Demšar's uncorrected statistic is divided by 1 - sum(t^3 - t) / (N k (k^2 - 1))
    scores = pd.DataFrame([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], columns=["a", "b", "c"])
    result = friedman(scores)
    uncorrected = friedman_chi2_from_ranks(list(result.average_ranks.values()), 3)
    assert math.isclose(result.chi2, uncorrected / (1 - (27 - 3) / (3 * 3 * 8)))
    tied = friedman(pd.DataFrame([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], columns=["a", "b", "c"]))
    assert (tied.chi2, tied.p_value) == (0.0, 1.0)


def test_holm_adjusted_p_values():
    assert np.allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    assert np.allclose(holm([0.5, 0.9]), [1.0, 1.0])


def test_pairwise_wilcoxon_signed_rank_with_split_zeros():
    # differences 1, 2, -3, 4, 5, 0: ranks 2, 3, 4, 5, 6 and 1 for the zero, split in halves
    a = np.array([1.0, 2.0, -3.0, 4.0, 5.0, 0.0])
    pairs = pairwise_wilcoxon_holm(pd.DataFrame({"x": a, "y": np.zeros(6)}))
    assert pairs["statistic"].iloc[0] == 4.5  # R- = 4 + 0.5; R+ = 16.5
    # 0.768 - 0.763 and 0.931 - 0.936 tie in magnitude (not in binary floating point)
    tie = pairwise_wilcoxon_holm(pd.DataFrame({"x": [0.768, 0.931], "y": [0.763, 0.936]}))
    assert tie["statistic"].iloc[0] == 1.5


def test_pairwise_wilcoxon_holm_corrects_over_pairs():
    rng = np.random.default_rng(1)
    base = rng.normal(size=12)
    scores = pd.DataFrame({"good": base, "bad": base + 1 + rng.random(12), "same": base + 1e-3 * rng.normal(size=12)})
    pairs = pairwise_wilcoxon_holm(scores).set_index(["a", "b"])
    assert pairs.loc[("good", "bad"), "significant"] and pairs.loc[("bad", "same"), "significant"]
    assert not pairs.loc[("good", "same"), "significant"]
    assert np.allclose(pairs["p_holm"], holm(pairs["p_value"].to_numpy()))
    equal = pairwise_wilcoxon_holm(pd.DataFrame({"a": [1.0, inf], "b": [1.0, inf]}))
    assert equal["p_value"].iloc[0] == 1.0


def test_compare_to_best_uses_the_one_sided_rank_sum_test():
    samples = {"best": [0.1, 0.2, 0.3, 0.4, 0.5], "worse": [1.0, 2.0, 3.0, 4.0, 5.0], "close": [0.15, 0.25, 0.35, 0.45, 0.55]}
    out = compare_to_best(samples).set_index("label")
    assert out.loc["best", "best"] and not out.loc["best", "worse"]
    assert math.isclose(out.loc["worse", "p_value"], 1 / 252)  # complete separation, 5 vs 5
    assert math.isclose(out.loc["worse", "p_holm"], 2 / 252)
    assert out.loc["worse", "worse"] and not out.loc["close", "worse"]
    two = compare_to_best({"a": [0.1, 0.2], "b": [5.0, 6.0]}).set_index("label")
    assert math.isclose(two.loc["b", "p_value"], 1 / 6) and not two.loc["b", "worse"]  # 2 seeds cannot reach 0.05
    assert compare_to_best({"a": [1.0, inf], "b": [inf, inf]}).set_index("label").loc["b", "p_value"] > 0.05


def test_score_matrix_blocks(small_study):
    finals = final_values(load_study(small_study))
    by_problem = score_matrix(finals)
    assert by_problem.shape == (2, 3)
    assert by_problem.loc["p1"].tolist() == pytest.approx([0.15, 1.5, 15.0])  # medians over 2 seeds
    by_seed = score_matrix(finals, blocks="problem-seed")
    assert by_seed.shape == (4, 3)
    partial = score_matrix(finals[~((finals["problem"] == "p2") & (finals["label"] == "c"))])
    assert partial.index.tolist() == ["p1"] and partial.attrs["dropped"] == ["p2"]


def test_rank_curves_average_over_problems(small_study):
    curves = metric_curves(load_study(small_study), "regret", grid=[0.0, 0.2, 1.0])
    ranks = rank_curves(curves).set_index(["frac", "label"])["rank"]
    assert ranks.loc[(0.0, "a")] == ranks.loc[(0.0, "c")] == 2.0  # nothing yet: all tied at inf
    assert [ranks.loc[(1.0, lab)] for lab in "abc"] == [1.0, 2.0, 3.0]
    by_seed = rank_curves(curves, by="seed").set_index(["frac", "label"])["rank"]
    assert [by_seed.loc[(0.2, lab)] for lab in "abc"] == [1.0, 2.0, 3.0]
    summary = summarise_curves(curves)
    row = summary[(summary["problem"] == "p1") & (summary["label"] == "b") & (summary["frac"] == 1.0)].iloc[0]
    assert (row["n"], row["median"], row["mean"]) == (2, 1.5, 1.5)
