"""Real training problems: resuming, determinism, divergence, the cost model, the SVM's subset
fidelity and the error messages. Tiny networks and few epochs throughout."""

import math
import sys

import numpy as np
import pytest
import torch

import mfbo
from mfbo import problems
from mfbo.problems.training import DiabetesMLP, DigitsCNN, DigitsMLP, DigitsSVM, load_dataset
from mfbo.strategies import Strategy

SMALL = {"lr": 0.05, "weight_decay": 1e-5, "width": 16, "depth": 1, "dropout": 0.1, "batch_size": 128}
OTHER = {**SMALL, "width": 24, "dropout": 0.2}
DIVERGES = {"lr": 1.0, "weight_decay": 1e-6, "width": 16, "depth": 1, "dropout": 0.0, "batch_size": 16}  # diabetes-mlp


def test_resuming_charges_the_increment_and_matches_training_from_scratch():
    resumed = DigitsMLP(cost="model", max_epochs=5)
    first = resumed.evaluate(SMALL, 2)
    cont = resumed.evaluate(SMALL, 5, resume_from=2)
    assert resumed.stats["epochs_trained"] == 5  # 2 + 3: the continuation trained only the increment
    assert cont.cost == resumed.increment_cost(SMALL, 5, 2) == resumed.cost(SMALL, 5) - resumed.cost(SMALL, 2)
    assert first.cost + cont.cost == pytest.approx(resumed.cost(SMALL, 5), rel=1e-12)

    scratch = DigitsMLP(cost="model", max_epochs=5, cache_size=0).evaluate(SMALL, 5)
    assert cont.curve_list() == scratch.curve_list() and len(scratch.curve_list()) == 5
    assert cont.value == scratch.value and cont.info == scratch.info
    assert first.curve_list() == scratch.curve_list()[:2]
    assert set(scratch.info) == {"train_loss", "valid_loss", "test_error"}
    assert 0.0 <= scratch.value <= 1.0 and scratch.value < 0.5  # it learns something in 5 epochs


def test_a_lost_checkpoint_is_retrained_to_the_same_state_and_still_charged_the_increment():
    problem = DigitsMLP(cost="model", max_epochs=4, cache_size=0)
    obs = problem.evaluate(SMALL, 4, resume_from=3)
    assert problem.stats == {"epochs_trained": 4, "from_checkpoint": 0, "from_scratch": 1}
    assert obs.cost == pytest.approx(problem.epoch_cost(SMALL), rel=1e-12)
    assert obs.curve_list() == DigitsMLP(cost="model", max_epochs=4).evaluate(SMALL, 4).curve_list()
    wall = DigitsMLP(max_epochs=4, cache_size=1)  # wall time: the recomputed epochs are not charged
    assert wall.cost(SMALL, 4) is None
    charged = wall.evaluate(SMALL, 4, resume_from=3).cost
    (run,) = wall._cache.values()
    assert charged == run.history[3]["time"] > 0  # the measured time of epoch 4 only


def test_checkpoints_on_disk_survive_a_restart(tmp_path):
    DigitsMLP(cost="model", max_epochs=4, cache_dir=tmp_path).evaluate(SMALL, 2)
    assert len(list(tmp_path.glob("digits-mlp-seed0-*.pt"))) == 1
    restarted = DigitsMLP(cost="model", max_epochs=4, cache_dir=tmp_path, cache_size=0)
    obs = restarted.evaluate(SMALL, 4, resume_from=2)
    assert restarted.stats == {"epochs_trained": 2, "from_checkpoint": 1, "from_scratch": 0}
    assert obs.curve_list() == DigitsMLP(cost="model", max_epochs=4, cache_size=0).evaluate(SMALL, 4).curve_list()


def test_a_run_trained_further_answers_a_lower_fidelity_from_its_history():
    problem = DigitsMLP(cost="model", max_epochs=4)
    full = problem.evaluate(SMALL, 4)
    low = problem.evaluate(SMALL, 2)
    assert problem.stats["epochs_trained"] == 4
    assert low.curve_list() == full.curve_list()[:2] and low.cost == problem.cost(SMALL, 2)


def test_same_seed_same_values_other_configs_and_seeds_differ():
    a = DigitsMLP(cost="model", max_epochs=3).evaluate(SMALL, 3)
    b = DigitsMLP(cost="model", max_epochs=3).evaluate(SMALL, 3)
    assert a == b
    assert DigitsMLP(cost="model", max_epochs=3).evaluate(OTHER, 3).info != a.info
    assert DigitsMLP(cost="model", max_epochs=3, seed=1).evaluate(SMALL, 3).info != a.info


def test_training_leaves_the_global_rng_and_thread_count_alone():
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    DigitsMLP(max_epochs=2, threads=threads + 1).evaluate(SMALL, 1)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads


class Listed(Strategy):
    """Evaluates the given configurations in order at the target fidelity."""

    name = "listed-test"
    configs: list = []

    def _suggest(self):
        return self.configs[len(self.history)], self.target_fidelity


def test_a_diverging_run_is_a_failed_trial_charged_its_cost_and_the_run_goes_on():
    problem = DiabetesMLP(cost="model", max_epochs=3)
    obs = problem.evaluate(DIVERGES, 3)
    assert not obs.ok and "diverged in epoch" in obs.error
    diverged_at = len(obs.curve_list()) + 1
    assert obs.cost == pytest.approx(problem.cost(DIVERGES, diverged_at), rel=1e-12)

    strategy = Listed(problem.space, problem.fidelity)
    strategy.configs = [DIVERGES, SMALL]
    result = mfbo.minimize(problem, strategy, budget=100.0, max_trials=2)
    assert [t.status for t in result.trials] == ["failed", "ok"]
    assert "diverged" in result.trials[0].error and result.trials[0].cost == obs.cost
    assert result.trials[1].value > 0 and set(result.trials[1].info) == {"train_loss", "test_mse"}


def test_the_cost_model_is_deterministic_and_cost_predicts_it():
    p, q = DigitsCNN(cost="model", max_epochs=2), DigitsCNN(cost="model", max_epochs=2)
    config = {"lr": 0.05, "weight_decay": 1e-5, "channels": 4, "depth": 1, "dropout": 0.1, "batch_size": 256}
    obs = p.evaluate(config, 2)
    assert obs.ok and obs.cost == p.cost(config, 2) == q.evaluate(config, 2).cost == 2 * p.epoch_cost(config)
    bigger = {**config, "channels": 32, "depth": 3, "batch_size": 16}
    assert p.cost(bigger, 1) > 5 * p.cost(config, 1)  # the model grows with the work
    assert DigitsCNN(max_epochs=2).cost(config, 2) is None


def test_digits_svm_uses_nested_class_balanced_subsets_and_is_not_resumable():
    svm = DigitsSVM(cost="model")
    assert svm.space["C"].low == pytest.approx(math.exp(-10)) and svm.space["gamma"].high == pytest.approx(math.exp(10))
    assert svm.space["C"].log and svm.fidelity.log and not svm.resumable
    n = svm.data.y_train.shape[0]
    assert svm.subset_size(1 / 64) == math.ceil(n / 64) and svm.subset_size(1.0) == n
    first = svm.data.y_train.numpy()[svm._order[:10]]
    assert sorted(first) == list(range(10))  # every class in the smallest subsets
    config = {"C": math.exp(3), "gamma": math.exp(-3)}
    small, full = svm.evaluate(config, 1 / 64), svm.evaluate(config, 1.0)
    assert full.value < small.value and full.value < 0.05 and set(full.info) == {"test_error", "train_error", "n_train"}
    assert svm.evaluate(config, 1.0, resume_from=0.5).cost == svm.cost(config, 1.0)  # full price
    assert svm.evaluate(config, 1.0) == full


@pytest.mark.parametrize(
    "make, config, fidelity, message",
    [
        (lambda: DigitsMLP(max_epochs=3), SMALL, 4, "outside the allowed range [1, 3]"),
        (lambda: DigitsMLP(), SMALL, 2.5, "must be an integer in [1, 50]"),
        (lambda: DigitsSVM(), {"C": 1.0, "gamma": 1.0}, 1 / 128, "outside the allowed range"),
        (lambda: DigitsMLP(), {**SMALL, "lr": 2.0}, 1, "parameter 'lr'"),
    ],
)
def test_bad_inputs_name_the_problem(make, config, fidelity, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make().evaluate(config, fidelity)


def test_bad_options_are_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match=r"cost must be one of \['wall', 'model'\]"):
        DigitsMLP(cost="flops")
    with pytest.raises(ValueError, match=r"max_epochs must be an integer in \[2, 30\]"):
        DigitsCNN(max_epochs=31)
    with pytest.raises(ValueError, match=r"problem 'digits-svm': unknown option\(s\) max_epochs; its options: cost: str = 'wall'"):
        problems.get("digits-svm", max_epochs=3)


def test_the_problems_are_registered():
    assert {"digits-mlp", "digits-cnn", "diabetes-mlp", "digits-svm"} <= set(problems.names())
    problem = problems.get("digits-cnn", max_epochs=4, cost="model")
    assert problem.fidelity.high == 4 and problem.resumable and problem.to_dict()["cost"] == "model"


def test_missing_scikit_learn_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    load_dataset.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install 'mfbo\[train\]'"):
            DigitsMLP()
    finally:
        load_dataset.cache_clear()


def test_the_data_splits_are_fixed_and_standardised():
    digits, diabetes = load_dataset("digits"), load_dataset("diabetes")
    assert [len(digits.y_train), len(digits.y_valid), len(digits.y_test)] == [1078, 359, 360]
    assert float(digits.x_train.max()) == 1.0 and digits.n_classes == 10
    assert diabetes.n_classes is None and abs(float(diabetes.y_train.mean())) < 1e-6
    assert np.isclose(float(diabetes.y_train.std(unbiased=False)), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="known datasets: digits, diabetes"):
        load_dataset("mnist")
