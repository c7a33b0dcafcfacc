"""Study sweeps (mfbo.study.config, "Sweeps"): a [[strategies]] entry's sweep expands into
labelled strategies before anything runs; a bad sweep is one clear message."""

from __future__ import annotations

import pytest

from mfbo.study.config import StudyConfigError, parse_study, sweep_label

BASE = {"problems": ["mfhartmann6-good"], "budget": {"target_evaluations": 5}, "seeds": 2}


def study(*entries):
    return parse_study({**BASE, "strategies": list(entries)})


def test_a_grid_expands_in_key_order_with_labels_and_options():
    s = study({"name": "hyperband", "options": {"bracket_sizes": "hpbandster"}, "sweep": {"eta": [2, 3], "r_min": [1, 3]}},
              "random")
    assert [e.label for e in s.strategies] == [
        "hyperband:eta=2,r_min=1", "hyperband:eta=2,r_min=3", "hyperband:eta=3,r_min=1", "hyperband:eta=3,r_min=3", "random"]
    assert s.strategies[1].options == {"bracket_sizes": "hpbandster", "eta": 2, "r_min": 3}
    assert len(s.runs) == 2 * 5  # seeds x strategies
    assert len({r.spec_hash for r in s.runs}) == len(s.runs)


def test_a_list_of_option_sets_and_a_guard_and_a_label():
    s = study({"name": "mf-ucb", "label": "ucb", "guard": {"every": 5},
               "sweep": [{"init_fraction": 0.2}, {"kernel": "linear-truncated", "init_fraction": 0.3}]})
    assert [e.label for e in s.strategies] == ["ucb:init_fraction=0.2", "ucb:kernel=linear-truncated,init_fraction=0.3"]
    assert all(e.options["guard"]["every"] == 5 for e in s.strategies)
    assert sweep_label("b", {"guard": {"every": 5}, "name": "x"}) == 'b:guard={"every": 5},name=x'


@pytest.mark.parametrize("sweep, key, says", [
    ({"etta": [2, 3]}, "strategies[0].sweep.etta", "strategy 'hyperband' has no option 'etta'; allowed options: eta, r_min, bracket_sizes, guard"),
    ({"eta": []}, "strategies[0].sweep.eta", "strategy 'hyperband': option 'eta' must have a non-empty array of values"),
    ({"eta": 3}, "strategies[0].sweep.eta", "must have a non-empty array of values to sweep, got 3"),
    ([], "strategies[0].sweep", "must be a table of non-empty arrays"),
    ([{"eta": 2}, {}], "strategies[0].sweep", "must be a table of non-empty arrays"),
    ({"eta": [2, 0.5]}, "strategies[0].sweep.eta", "option eta must be a number > 1, got 0.5"),
])
def test_bad_sweeps_name_the_strategy_option_and_allowed_ones(sweep, key, says):
    with pytest.raises(StudyConfigError) as info:
        study({"name": "hyperband", "sweep": sweep})
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith(f"{key}: ") and says in info.value.errors[0]


def test_an_option_both_set_and_swept_and_a_repeated_label_are_errors():
    with pytest.raises(StudyConfigError, match=r"sweep\.eta: strategy 'hyperband': option 'eta' is also set in options"):
        study({"name": "hyperband", "options": {"eta": 3}, "sweep": {"eta": [2, 4]}})
    with pytest.raises(StudyConfigError, match=r"label 'hyperband:eta=2' is already used by strategies\[0\]"):
        study({"name": "hyperband", "sweep": {"eta": [2]}}, {"name": "hyperband", "label": "hyperband:eta=2"})
