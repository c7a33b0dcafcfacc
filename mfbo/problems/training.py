"""Real training problems on datasets bundled with scikit-learn (nothing is downloaded).

Registered names (extra ``train``: ``pip install mfbo[train]``)::

    digits-mlp     PyTorch MLP classifier on the 8x8 digits      fidelity epochs 1..50 (resumable)
    digits-cnn     small PyTorch CNN on the 8x8 digit images     fidelity epochs 1..30 (resumable)
    diabetes-mlp   PyTorch MLP regression on diabetes            fidelity epochs 1..50 (resumable)
    digits-svm     scikit-learn SVC (RBF), C and gamma           fidelity subset 1/64..1 (log scale)

Data
----
``load_digits`` (1797 images, 10 classes, pixels 0..16 scaled to [0, 1]) and ``load_diabetes``
(442 patients, 10 features standardised with the training split's mean and std; the target is
standardised the same way). Each dataset is split once into train / validation / test = 60 / 20
/ 20 % by a fixed permutation (``numpy.random.default_rng(SPLIT_SEED)``), the same for every
problem seed, so the seeds of a problem are replicates of one task.

Objective (minimised)
---------------------
- classification: the **validation error rate** (fraction of misclassified validation images;
  steps of 1/359 on digits). It is what one tunes for and is bounded, which keeps GP models sane;
  the validation cross-entropy is in ``info["valid_loss"]``.
- regression: the **validation MSE of the standardised target** (1.0 = predicting the mean).

``info`` holds the test score (``test_error`` or ``test_mse``) and ``train_loss`` (the mean
training loss over the last epoch; for the SVM the training error rate ``train_error``). The test
split is never used for anything else.

Training (epoch problems)
-------------------------
SGD with momentum 0.9 and L2 weight decay (``torch.optim.SGD``'s coupled ``weight_decay``), a
constant learning rate, mini-batches of ``batch_size`` with the last partial batch kept, cross-
entropy or MSE loss, float32, ReLU. The setting follows LCBench (Zimmer et al., 2021: an MLP
trained with SGD, tuning learning rate, weight decay, width, depth, dropout and batch size) with
two deviations: the learning rate is constant (LCBench anneals it with a cosine schedule over 50
epochs), and momentum is fixed. The learning-rate range reaches 1.0, so part of the space
diverges, as in real tuning; a run whose training loss or validation loss becomes NaN/inf returns
a failed :class:`~mfbo.trial.Observation` charged the cost spent so far (its ``curve`` holds the
epochs completed before it diverged).

Determinism. Training is a deterministic function of ``(seed, config)``: the weights are
initialised from a local :class:`torch.Generator` seeded with a hash of ``(seed, config)``, and
epoch ``e``'s shuffling and dropout masks come from a generator seeded with a hash of
``(seed, config, e)``, so no draw depends on the history of other evaluations, and the global RNG
is never touched. Continuing a run from a checkpoint is therefore bit-for-bit the same as training
from scratch (given the same torch build, machine and thread count).

Resuming and the checkpoint cache
---------------------------------
The fidelity is the number of epochs, and the problems are :attr:`~Problem.resumable`: the state
after each evaluation (network, optimiser and the per-epoch history) is kept in an in-memory LRU
cache of ``cache_size`` configurations, and optionally written to ``cache_dir`` (one ``.pt`` file
per configuration) so that it survives a restart. An evaluation at ``e2`` epochs

- continues from the cached state when it is at ``<= e2`` epochs;
- is read from the cached per-epoch history when the cache already went past ``e2`` (the
  result is the same, training being deterministic);
- otherwise trains from scratch.

Whatever had to be (re)computed, the charged cost is that of the epochs ``(resume_from, e2]``
(``resume_from = 0`` for a new evaluation). Under ``cost="model"`` this is exactly
``increment_cost(config, e2, resume_from)``. Under ``cost="wall"`` it is the measured time of
those epochs, whenever they were trained: epochs recomputed because a checkpoint was lost (an
eviction, a restart without ``cache_dir``) are trained again but not charged; their count is in
:attr:`TrainingProblem.stats`. The curve (``Observation.curve``) is the validation objective after
every epoch ``1..e2``.

Cost
----
``cost="wall"`` (default): measured seconds of training plus the per-epoch evaluation of the
validation and test splits; :meth:`cost` returns ``None``. ``cost="model"``: a deterministic cost
model of the same work, in seconds on the calibration machine, so studies are reproducible bit
for bit and the loop can check the budget in advance. Per epoch::

    t = c0 + c1 * B + c2 * B * L + c3 * N_train * M + c4 * N_eval * M

with ``B`` mini-batches per epoch, ``L`` weight layers, ``M`` forward multiply-accumulates per
example and ``N_eval`` the validation + test examples. The coefficients (``cost_coefficients`` of
each class) were fitted by non-negative least squares on relative errors to the median epoch
CPU time (``time.process_time``, which the load of other processes does not inflate, unlike wall
time) of 40 random configurations trained for 3 epochs each, with 1 torch thread on the
project's 2-core development machine (torch 2.13 CPU)::

    nice python -c "from mfbo.problems.training import calibrate_cost_model as c; print(c('digits-mlp'))"

Checked on 15 other random configurations (3 epochs; :func:`cost_model_error`), the median
relative error against the measured CPU time is 6 % (digits-mlp), 8 % (diabetes-mlp) and 7 % (digits-cnn), at most 30-50 %
for the smallest networks, whose epochs are dominated by Python overhead. The SVM's model is
``c0 + c1 * n + c2 * n**2`` in the number ``n`` of training examples; it ignores ``C`` and
``gamma``, which change the number of support vectors, so its median error is 25 %.

Threads: training runs under ``torch.set_num_threads(threads)`` (default 1, the fastest for these
small networks), and the previous thread count is restored afterwards.

``digits-svm``
--------------
The FABOLAS setting (Klein et al., AISTATS 2017; HPOlib's ``SupportVectorMachine``): an RBF SVC
with ``C`` and ``gamma`` both log-uniform in ``[e^-10, e^10]`` (HPOlib optimises ``log C, log
gamma in [-10, 10]`` on the natural-log scale), and the fidelity is the fraction ``s`` of the
training split, ``s in [1/64, 1]`` on a log scale (target 1). Deviations: the digits data instead
of MNIST, and the subsets are nested and class-balanced (the first ``ceil(s * n)`` examples of a
fixed class-interleaved order) where FABOLAS draws a fresh stratified subset; nesting makes the
fidelities better correlated and the problem deterministic. It is not resumable.

``target_value`` and ``optimum`` are ``None``: the objective is only known by training.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..files import replace_atomically
from ..rng import torch_threads
from ..space import Fidelity, Float, Int, Space
from ..trial import Observation
from . import register
from .base import Problem

__all__ = [
    "Dataset", "load_dataset", "TrainingProblem", "DigitsMLP", "DigitsCNN", "DiabetesMLP",
    "DigitsSVM", "calibrate_cost_model", "cost_model_error", "torch_threads", "SPLIT_SEED",
]

#: Seed of the fixed train / validation / test permutation of every dataset.
SPLIT_SEED = 0
_SPLIT_FRACTIONS = (0.6, 0.2)  # train, validation; the rest is test
_CHECKPOINT_FORMAT = 1


def _require_sklearn(what: str):
    try:
        import sklearn.datasets
    except ImportError:
        raise ImportError(f"{what} needs scikit-learn: pip install 'mfbo[train]'") from None
    return sklearn


def _derive_seed(*parts: Any) -> int:
    """A 63-bit seed from a hash of ``parts`` (stable across processes, unlike ``hash``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def _config_key(config: Mapping[str, Any]) -> str:
    """Canonical text of a validated configuration (floats by ``repr``, so exact)."""
    return json.dumps(dict(config), sort_keys=True)


# Data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """A fixed train / validation / test split as float32 tensors (targets int64 for classes).

    ``x_*`` have shape ``(n, n_features)``; ``y_*`` shape ``(n,)``. ``n_classes`` is ``None``
    for regression.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int | None

    @property
    def classification(self) -> bool:
        return self.n_classes is not None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


DATASETS = ("digits", "diabetes")


@functools.lru_cache(maxsize=None)
def load_dataset(name: str) -> Dataset:
    """Load and split a scikit-learn bundled dataset (``"digits"`` or ``"diabetes"``); cached."""
    if name not in DATASETS:
        raise ValueError(f"load_dataset: unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    sklearn = _require_sklearn(f"the {name!r} training problems")
    if name == "digits":
        bunch = sklearn.datasets.load_digits()
        x, y = bunch.data / 16.0, bunch.target.astype(np.int64)
    else:
        bunch = sklearn.datasets.load_diabetes()
        x, y = bunch.data, bunch.target.astype(np.float64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_train = int(round(_SPLIT_FRACTIONS[0] * len(x)))
    n_valid = int(round(_SPLIT_FRACTIONS[1] * len(x)))
    parts = np.split(order, [n_train, n_train + n_valid])
    xs = [x[idx] for idx in parts]
    ys = [y[idx] for idx in parts]
    n_classes = None
    if name == "digits":
        n_classes = int(y.max()) + 1
    else:  # standardise features and target with the training split's statistics
        mean, std = xs[0].mean(axis=0), xs[0].std(axis=0)
        xs = [(v - mean) / std for v in xs]
        y_mean, y_std = ys[0].mean(), ys[0].std()
        ys = [(v - y_mean) / y_std for v in ys]
    tx = [torch.as_tensor(v, dtype=torch.float32) for v in xs]
    ty = [torch.as_tensor(v, dtype=torch.int64 if n_classes else torch.float32) for v in ys]
    return Dataset(name, tx[0], ty[0], tx[1], ty[1], tx[2], ty[2], n_classes)


# Networks ------------------------------------------------------------------------------------
def _init_linear(out_features: int, in_features: int, generator: torch.Generator) -> tuple[torch.nn.Parameter, torch.nn.Parameter]:
    """``torch.nn.Linear``'s default initialisation, drawn from ``generator``."""
    weight = torch.empty(out_features, in_features)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(in_features)
    bias = torch.empty(out_features).uniform_(-bound, bound, generator=generator)
    return torch.nn.Parameter(weight), torch.nn.Parameter(bias)


def _init_conv(out_channels: int, in_channels: int, kernel: int, generator: torch.Generator) -> tuple[torch.nn.Parameter, torch.nn.Parameter]:
    """``torch.nn.Conv2d``'s default initialisation, drawn from ``generator``."""
    weight = torch.empty(out_channels, in_channels, kernel, kernel)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(in_channels * kernel * kernel)
    bias = torch.empty(out_channels).uniform_(-bound, bound, generator=generator)
    return torch.nn.Parameter(weight), torch.nn.Parameter(bias)


def _dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout with masks from ``generator``; identity when ``generator`` is None (eval)."""
    if generator is None or p <= 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1.0 - p)


class MLP(torch.nn.Module):
    """``depth`` hidden ReLU layers of ``width`` units, dropout after each, a linear output.

    ``forward(x, generator)``: ``x`` is ``(n, n_in)``, the output ``(n, n_out)``; dropout is
    applied only when a ``generator`` (for its masks) is given, i.e. in training.
    """

    def __init__(self, n_in: int, n_out: int, width: int, depth: int, dropout: float, generator: torch.Generator):
        super().__init__()
        sizes = [n_in] + [width] * depth + [n_out]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            w, b = _init_linear(fan_out, fan_in, generator)
            self.weights.append(w)
            self.biases.append(b)
        self.dropout = float(dropout)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = F.linear(x, w, b)
            if i < last:
                x = _dropout(F.relu(x), self.dropout, generator)
        return x


class CNN(torch.nn.Module):
    """``depth`` 3x3 convolutions (padding 1) of ``channels`` channels with ReLU on the 8x8
    image, a 2x2 max-pool (to 4x4), dropout, and a linear classifier.

    ``forward(x, generator)``: ``x`` is ``(n, 64)`` (flattened images), the output ``(n, n_out)``.
    """

    side = 8

    def __init__(self, n_out: int, channels: int, depth: int, dropout: float, generator: torch.Generator):
        super().__init__()
        self.conv_weights = torch.nn.ParameterList()
        self.conv_biases = torch.nn.ParameterList()
        for i in range(depth):
            w, b = _init_conv(channels, 1 if i == 0 else channels, 3, generator)
            self.conv_weights.append(w)
            self.conv_biases.append(b)
        self.head_weight, self.head_bias = _init_linear(n_out, channels * (self.side // 2) ** 2, generator)
        self.dropout = float(dropout)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = x.reshape(-1, 1, self.side, self.side)
        for w, b in zip(self.conv_weights, self.conv_biases):
            x = F.relu(F.conv2d(x, w, b, padding=1))
        x = F.max_pool2d(x, 2).flatten(1)
        return F.linear(_dropout(x, self.dropout, generator), self.head_weight, self.head_bias)


# Epoch-fidelity training problems ----------------------------------------------------------------
@dataclass
class _Run:
    """A training run of one configuration: its live network and optimiser, and per epoch
    (index ``e - 1``) the record ``{"value", "train_loss", "time", <test/valid metrics>}``.
    ``diverged`` is the error text if epoch ``len(history) + 1`` diverged (then ``diverged_time``
    is the time spent in it)."""

    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    history: list[dict[str, float]] = field(default_factory=list)
    diverged: str | None = None
    diverged_time: float = 0.0

    @property
    def epoch(self) -> int:
        return len(self.history)


COST_MODES = ("wall", "model")


class TrainingProblem(Problem):
    """An epoch-fidelity training problem: a network trained with SGD on a bundled dataset.

    Subclasses set ``dataset``, ``default_max_epochs``, ``cost_coefficients`` (the fitted per-epoch cost
    model ``c0..c4``, see the module docstring) and implement :meth:`_build_network`,
    :meth:`_macs` (forward multiply-accumulates per example) and :meth:`_layers`.

    Args:
        seed: seeds the initialisation, shuffling and dropout (not the data split).
        max_epochs: the highest (target) fidelity; default the problem's (50 or 30). A smaller
            value gives a shorter horizon (quick tests, tables) with identical epochs.
        cost: ``"wall"`` (measured seconds) or ``"model"`` (the deterministic cost model).
        threads: torch threads during training (restored afterwards); ``None`` leaves them alone.
        cache_size: how many configurations' checkpoints the in-memory LRU cache keeps (0: none).
        cache_dir: optional directory for checkpoints on disk (kept across restarts).

    Attributes:
        stats: counters ``epochs_trained`` (every epoch actually computed, recomputations
            included), ``from_checkpoint`` (evaluations that continued or read a kept run) and
            ``from_scratch`` (evaluations that had to train from epoch 0).
    """

    resumable = True
    noiseless_target = True  # training is a deterministic function of (seed, config): module docstring
    dataset: ClassVar[str]
    default_max_epochs: ClassVar[int]
    cost_coefficients: ClassVar[tuple[float, float, float, float, float]]

    def __init__(
        self,
        name: str,
        space: Space,
        *,
        seed: int = 0,
        max_epochs: int | None = None,
        cost: str = "wall",
        threads: int | None = 1,
        cache_size: int = 32,
        cache_dir: str | Path | None = None,
    ) -> None:
        if cost not in COST_MODES:
            raise ValueError(f"problem {name!r}: cost must be one of {list(COST_MODES)}, got {cost!r}")
        if isinstance(seed, bool) or int(seed) != seed:
            raise ValueError(f"problem {name!r}: seed must be an integer, got {seed!r}")
        if threads is not None and (isinstance(threads, bool) or int(threads) != threads or threads < 1):
            raise ValueError(f"problem {name!r}: threads must be a positive integer or None, got {threads!r}")
        if isinstance(cache_size, bool) or int(cache_size) != cache_size or cache_size < 0:
            raise ValueError(f"problem {name!r}: cache_size must be an integer >= 0, got {cache_size!r}")
        max_epochs = self.default_max_epochs if max_epochs is None else max_epochs
        if isinstance(max_epochs, bool) or int(max_epochs) != max_epochs or not 2 <= max_epochs <= self.default_max_epochs:
            raise ValueError(f"problem {name!r}: max_epochs must be an integer in [2, {self.default_max_epochs}], got {max_epochs!r}")
        super().__init__(name, space, Fidelity("epochs", 1, int(max_epochs), integer=True))
        self.data = load_dataset(self.dataset)
        self.seed = int(seed)
        self.cost_mode = cost
        self.threads = None if threads is None else int(threads)
        self.cache_size = int(cache_size)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._cache: OrderedDict[str, _Run] = OrderedDict()
        self.stats = {"epochs_trained": 0, "from_checkpoint": 0, "from_scratch": 0}

    # Hooks --------------------------------------------------------------------------------------
    def _build_network(self, config: Mapping[str, Any], generator: torch.Generator) -> torch.nn.Module:
        raise NotImplementedError  # abstract

    def _macs(self, config: Mapping[str, Any]) -> float:
        raise NotImplementedError  # abstract

    def _layers(self, config: Mapping[str, Any]) -> int:
        raise NotImplementedError  # abstract

    # Cost model ---------------------------------------------------------------------------------
    def cost_features(self, config: Mapping[str, Any]) -> np.ndarray:
        """The per-epoch cost features ``[1, B, B * L, N_train * M, N_eval * M]`` of ``config``."""
        n_train = self.data.x_train.shape[0]
        n_eval = self.data.x_valid.shape[0] + self.data.x_test.shape[0]
        batches = math.ceil(n_train / config["batch_size"])
        macs = self._macs(config)
        return np.array([1.0, batches, batches * self._layers(config), n_train * macs, n_eval * macs])

    def epoch_cost(self, config: Mapping[str, Any]) -> float:
        """The cost model's seconds per epoch of ``config``."""
        return float(np.dot(self.cost_coefficients, self.cost_features(self.space.validate(config))))

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float | None:
        """``epochs * epoch_cost(config)`` under ``cost="model"``; ``None`` under wall time."""
        if self.cost_mode != "model":
            return None
        return self.validate_fidelity(fidelity) * self.epoch_cost(config)

    def _charge(self, config: dict[str, Any], run: _Run, start: int, stop: int) -> float:
        """The cost of epochs ``(start, stop]`` of ``run`` (``stop`` may be the diverged epoch)."""
        if self.cost_mode == "model":
            return max(self.cost(config, stop) - (self.cost(config, start) if start > 0 else 0.0), 0.0)
        times = [h["time"] for h in run.history[start:stop]]
        if stop > run.epoch:  # the epoch that diverged
            times.append(run.diverged_time)
        return float(sum(times))

    # Training -----------------------------------------------------------------------------------
    def _new_run(self, config: dict[str, Any], key: str) -> _Run:
        generator = torch.Generator().manual_seed(_derive_seed(self.name, self.seed, key, "init"))
        network = self._build_network(config, generator)
        optimizer = torch.optim.SGD(network.parameters(), lr=config["lr"], momentum=0.9, weight_decay=config["weight_decay"])
        return _Run(network, optimizer)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y) if self.data.classification else F.mse_loss(out.squeeze(-1), y)

    def _scores(self, network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(loss, objective) on a split: (cross-entropy, error rate) or (MSE, MSE)."""
        out = network(x)
        loss = float(self._loss(out, y))
        if not self.data.classification:
            return loss, loss
        return loss, float((out.argmax(dim=1) != y).double().mean())

    def _train_epoch(self, run: _Run, key: str, config: dict[str, Any]) -> None:
        """Train epoch ``run.epoch + 1``; append its record or mark the run diverged."""
        epoch = run.epoch + 1
        data = self.data
        start_time, start_cpu = time.perf_counter(), time.process_time()
        generator = torch.Generator().manual_seed(_derive_seed(self.name, self.seed, key, "epoch", epoch))
        n = data.x_train.shape[0]
        order = torch.randperm(n, generator=generator)
        batch = config["batch_size"]
        network, optimizer = run.network, run.optimizer
        total = 0.0
        for lo in range(0, n, batch):
            idx = order[lo:lo + batch]
            loss = self._loss(network(data.x_train[idx], generator), data.y_train[idx])
            if not torch.isfinite(loss):
                run.diverged, run.diverged_time = f"training diverged in epoch {epoch}: non-finite training loss", time.perf_counter() - start_time
                return
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        with torch.no_grad():
            valid_loss, value = self._scores(network, data.x_valid, data.y_valid)
            test_loss, test_value = self._scores(network, data.x_test, data.y_test)
        if not (math.isfinite(valid_loss) and math.isfinite(test_loss)):
            run.diverged, run.diverged_time = f"training diverged in epoch {epoch}: non-finite validation loss", time.perf_counter() - start_time
            return
        record = {"value": value, "train_loss": total / n}
        if data.classification:
            record.update(valid_loss=valid_loss, test_error=test_value)
        else:
            record.update(test_mse=test_value)
        record["time"] = time.perf_counter() - start_time
        record["cpu_time"] = time.process_time() - start_cpu
        run.history.append(record)
        self.stats["epochs_trained"] += 1

    def _run_to(self, config: dict[str, Any], epochs: int) -> _Run:
        """A run of ``config`` that reached ``epochs`` (or diverged before): from the cache, the
        disk, or trained from scratch; continued as needed and put back in the cache."""
        key = _config_key(config)
        run = self._cache.pop(key, None)
        if run is None:
            run = self._load_checkpoint(config, key)
        if run is None:
            run = self._new_run(config, key)
            self.stats["from_scratch"] += 1
        else:
            self.stats["from_checkpoint"] += 1
        trained = False
        # an exception mid-epoch propagates before the run is put back: a half-trained epoch is never kept
        with torch_threads(self.threads):
            while run.epoch < epochs and run.diverged is None:
                self._train_epoch(run, key, config)
                trained = True
        if self.cache_size > 0:
            self._cache[key] = run
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        if trained:
            self._save_checkpoint(run, key)
        return run

    def _observe(self, config: dict[str, Any], fidelity: int, start: int) -> Observation:
        run = self._run_to(config, fidelity)
        curve = [h["value"] for h in run.history[:fidelity]]
        if run.epoch < fidelity:  # diverged in epoch run.epoch + 1
            cost = self._charge(config, run, start, run.epoch + 1)
            return Observation(value=math.nan, cost=cost, curve=curve, error=run.diverged)
        record = run.history[fidelity - 1]
        info = {k: v for k, v in record.items() if k not in ("value", "time", "cpu_time")}
        return Observation(value=record["value"], cost=self._charge(config, run, start, fidelity), curve=curve, info=info)

    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        return self._observe(config, int(fidelity), 0)

    def _resume(self, config: dict[str, Any], fidelity: float, resume_from: float) -> Observation:
        return self._observe(config, int(fidelity), int(resume_from))

    # Checkpoints on disk ------------------------------------------------------------------------
    def _checkpoint_path(self, key: str) -> Path:
        digest = hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
        return self.cache_dir / f"{self.name}-seed{self.seed}-{digest}.pt"

    def _save_checkpoint(self, run: _Run, key: str) -> None:
        if self.cache_dir is None:
            return
        checkpoint = {
            "format": _CHECKPOINT_FORMAT, "config": key, "network": run.network.state_dict(),
            "optimizer": run.optimizer.state_dict(), "history": run.history,
            "diverged": run.diverged, "diverged_time": run.diverged_time,
        }
        replace_atomically(self._checkpoint_path(key), lambda f: torch.save(checkpoint, f))  # never half-written

    def _load_checkpoint(self, config: dict[str, Any], key: str) -> _Run | None:
        if self.cache_dir is None:
            return None
        path = self._checkpoint_path(key)
        if not path.is_file():
            return None
        state = torch.load(path, weights_only=True)
        if state.get("format") != _CHECKPOINT_FORMAT or state.get("config") != key:
            return None  # another format or a hash collision: retrain
        run = self._new_run(config, key)
        run.network.load_state_dict(state["network"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.history = [dict(h) for h in state["history"]]
        run.diverged, run.diverged_time = state["diverged"], float(state["diverged_time"])
        return run

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(dataset=self.dataset, seed=self.seed, cost=self.cost_mode, threads=self.threads)
        return out


def _sgd_space(**architecture: Any) -> Space:
    """The optimiser hyperparameters shared by the epoch problems, plus ``architecture``."""
    return Space(
        lr=Float(1e-3, 1.0, log=True),
        weight_decay=Float(1e-6, 1e-1, log=True),
        **architecture,
        dropout=Float(0.0, 0.5),
        batch_size=Int(16, 256, log=True),
    )


class _MLPProblem(TrainingProblem):
    """An :class:`MLP` on a tabular dataset: ``lr, weight_decay, width, depth, dropout,
    batch_size``."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, _sgd_space(width=Int(16, 512, log=True), depth=Int(1, 4)), **kwargs)

    def _n_out(self) -> int:
        return self.data.n_classes or 1

    def _build_network(self, config, generator):
        return MLP(self.data.n_features, self._n_out(), config["width"], config["depth"], config["dropout"], generator)

    def _macs(self, config):
        w, d = config["width"], config["depth"]
        return self.data.n_features * w + (d - 1) * w * w + w * self._n_out()

    def _layers(self, config):
        return config["depth"] + 1


class DigitsMLP(_MLPProblem):
    """``digits-mlp``: an MLP classifier on the digits; objective the validation error rate."""

    dataset = "digits"
    default_max_epochs = 50
    cost_coefficients = (0.001521, 0.0001642, 0.000137, 1.452e-10, 0.0)  # calibrate_cost_model("digits-mlp")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("digits-mlp", **kwargs)


class DiabetesMLP(_MLPProblem):
    """``diabetes-mlp``: an MLP regression on diabetes; objective the validation MSE of the
    standardised target."""

    dataset = "diabetes"
    default_max_epochs = 50
    cost_coefficients = (0.0004232, 0.000221, 0.0001199, 1.471e-10, 0.0)  # calibrate_cost_model("diabetes-mlp")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("diabetes-mlp", **kwargs)


class DigitsCNN(TrainingProblem):
    """``digits-cnn``: a :class:`CNN` on the 8x8 digit images: ``lr, weight_decay, channels
    (4..64, log), depth (1..3 conv layers), dropout, batch_size``; objective the validation
    error rate."""

    dataset = "digits"
    default_max_epochs = 30
    cost_coefficients = (0.01105, 0.0001566, 0.0004959, 1.046e-10, 0.0)  # calibrate_cost_model("digits-cnn")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("digits-cnn", _sgd_space(channels=Int(4, 64, log=True), depth=Int(1, 3)), **kwargs)

    def _build_network(self, config, generator):
        return CNN(self.data.n_classes, config["channels"], config["depth"], config["dropout"], generator)

    def _macs(self, config):
        c, d = config["channels"], config["depth"]
        pixels = CNN.side**2
        return 9 * pixels * (c + (d - 1) * c * c) + c * (CNN.side // 2) ** 2 * self.data.n_classes

    def _layers(self, config):
        return config["depth"] + 1


# Data-subset fidelity: the SVM ------------------------------------------------------------------
class DigitsSVM(Problem):
    """``digits-svm``: an RBF SVC on a nested, class-balanced fraction of the digits training
    split (see the module docstring). Objective: validation error rate.

    Args:
        cost: ``"wall"`` (measured seconds of fit + scoring) or ``"model"``
            (``c0 + c1 n + c2 n^2`` seconds for ``n`` training examples).

    The SVC is deterministic, so the problem has no seed.
    """

    noiseless_target = True  # the SVC is deterministic
    min_fraction = 1.0 / 64
    cost_coefficients = (0.002493, 5.322e-05, 2.921e-08)  # calibrate_cost_model("digits-svm"), see the module docstring

    def __init__(self, *, cost: str = "wall") -> None:
        if cost not in COST_MODES:
            raise ValueError(f"problem 'digits-svm': cost must be one of {list(COST_MODES)}, got {cost!r}")
        bound = (math.exp(-10.0), math.exp(10.0))
        space = Space(C=Float(*bound, log=True), gamma=Float(*bound, log=True))
        super().__init__("digits-svm", space, Fidelity("subset", self.min_fraction, 1.0, log=True))
        self.data = load_dataset("digits")
        self.cost_mode = cost
        y = self.data.y_train.numpy()
        rng = np.random.default_rng(SPLIT_SEED)
        per_class = [rng.permutation(np.flatnonzero(y == k)) for k in range(self.data.n_classes)]
        # round-robin over the classes: every prefix is as balanced as the classes allow
        rounds = max(len(p) for p in per_class)
        self._order = np.array([p[r] for r in range(rounds) for p in per_class if r < len(p)])

    def subset_size(self, fidelity: Any) -> int:
        """Training examples used at ``fidelity``: ``ceil(s * n_train)``."""
        s = self.validate_fidelity(fidelity)
        return max(1, math.ceil(s * len(self._order) - 1e-9))

    def cost_features(self, fidelity: Any) -> np.ndarray:
        n = self.subset_size(fidelity)
        return np.array([1.0, n, n * n])

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float | None:
        if self.cost_mode != "model":
            return None
        return float(np.dot(self.cost_coefficients, self.cost_features(fidelity)))

    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        from sklearn.svm import SVC

        start = time.perf_counter()
        idx = self._order[: self.subset_size(fidelity)]
        x_train, y_train = self.data.x_train.numpy().astype(np.float64), self.data.y_train.numpy()
        model = SVC(C=config["C"], gamma=config["gamma"], kernel="rbf")
        model.fit(x_train[idx], y_train[idx])
        error = lambda x, y: float(np.mean(model.predict(x.numpy().astype(np.float64)) != y.numpy()))  # noqa: E731
        value = error(self.data.x_valid, self.data.y_valid)
        info = {"test_error": error(self.data.x_test, self.data.y_test), "train_error": float(np.mean(model.predict(x_train[idx]) != y_train[idx])), "n_train": int(len(idx))}
        elapsed = time.perf_counter() - start
        return Observation(value=value, cost=elapsed if self.cost_mode == "wall" else self.cost(config, fidelity), info=info)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(dataset="digits", cost=self.cost_mode)
        return out


# Calibration of the cost models -----------------------------------------------------------------
def calibrate_cost_model(name: str, n_configs: int = 40, epochs: int = 3, seed: int = 0) -> tuple[float, ...]:
    """Fit the cost-model coefficients of problem ``name`` to measured wall times.

    Epoch problems: ``n_configs`` random configurations are trained for ``epochs`` epochs each
    (1 torch thread) and the median epoch CPU time (``time.process_time``, insensitive to the
    load of other processes, unlike wall time) is regressed on :meth:`TrainingProblem.cost_features`.
    ``digits-svm``: ``n_configs`` random configurations at 7 fractions ``1/64 .. 1``, regressed on
    ``[1, n, n^2]``. Non-negative least squares on relative errors. Takes a minute or two; the
    result is what the classes' ``cost_coefficients`` hold.
    """
    from scipy.optimize import nnls

    problem = PROBLEMS[name](cost="wall", cache_size=0) if name != "digits-svm" else DigitsSVM(cost="wall")
    rng = np.random.default_rng(seed)
    rows, times = [], []
    for config in problem.space.sample(rng, n_configs):
        if isinstance(problem, TrainingProblem):
            run = problem._new_run(problem.space.validate(config), _config_key(config))
            with torch_threads(1):
                for _ in range(epochs):
                    problem._train_epoch(run, _config_key(config), config)
            if not run.history:
                continue
            rows.append(problem.cost_features(config))
            times.append(float(np.median([h["cpu_time"] for h in run.history])))
        else:
            for k in range(7):
                fraction = 2.0 ** (k - 6)
                rows.append(problem.cost_features(fraction))
                start = time.process_time()
                problem.evaluate(config, fraction)
                times.append(time.process_time() - start)
    A, t = np.array(rows), np.array(times)
    coefficients, _ = nnls(A / t[:, None], np.ones_like(t))
    return tuple(float(f"{c:.4g}") for c in coefficients)


def cost_model_error(name: str, n_configs: int = 15, epochs: int = 3, seed: int = 123) -> tuple[float, float]:
    """``(median, max)`` relative error of problem ``name``'s cost model against the measured CPU
    time of ``n_configs`` random configurations (``epochs`` epochs each; the SVM at fractions
    1/64, 1/8, 1/2 and 1), with 1 torch thread. The numbers in the module docstring come from it."""
    errors = []
    if name == "digits-svm":
        problem = DigitsSVM(cost="model")
        for config in problem.space.sample(np.random.default_rng(seed), n_configs):
            for fraction in (1 / 64, 1 / 8, 1 / 2, 1.0):
                start = time.process_time()
                problem.evaluate(config, fraction)
                errors.append(problem.cost(config, fraction) / (time.process_time() - start) - 1)
    else:
        problem = PROBLEMS[name](cost="model", threads=1, cache_size=1)
        for config in problem.space.sample(np.random.default_rng(seed), n_configs):
            if problem.evaluate(config, epochs).ok:
                (run,) = problem._cache.values()
                errors.append(problem.cost(config, epochs) / sum(h["cpu_time"] for h in run.history) - 1)
    errors = np.abs(errors)
    return float(np.median(errors)), float(np.max(errors))


PROBLEMS: dict[str, type[Problem]] = {
    "digits-mlp": DigitsMLP, "digits-cnn": DigitsCNN, "diabetes-mlp": DiabetesMLP, "digits-svm": DigitsSVM,
}
for _name, _cls in PROBLEMS.items():
    register(_name, _cls)
del _name, _cls
