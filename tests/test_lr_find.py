"""Learning-rate range test: the schedule, divergence, the suggestion's usefulness, group ratios, restoration."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from percept.errors import PerceptError
from percept.transfer.lr_find import LRFinderResult, lr_range_test, plot_lr_finder

START, END, STEPS = 1e-5, 10.0, 100


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is ~20x faster than two on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """512 linearly separable points in 10-D."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 10, generator=g) * 3
    y = (x @ torch.randn(10, generator=g) > 0).long()
    return x, y


def _loader(x, y, seed: int = 0) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(seed))


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))


def _full_loss(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        return nn.functional.cross_entropy(model(x), y).item()


def _train_epoch(model: nn.Module, x, y, lr: float) -> float:
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for xb, yb in _loader(x, y, seed=1):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    return _full_loss(model, x, y)


def test_range_test_schedule_divergence_and_useful_suggestion():
    x, y = _data()
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    result = lr_range_test(model, _loader(x, y), nn.CrossEntropyLoss(), opt, start_lr=START, end_lr=END, steps=STEPS,
                           progress=True)
    n = len(result.lrs)
    assert len(result.losses) == len(result.raw_losses) == n

    # geometric schedule from start_lr towards end_lr (the loader has 16 batches: it was cycled)
    assert result.lrs[0] == pytest.approx(START, rel=1e-12)
    growth = (END / START) ** (1 / (STEPS - 1))
    for a, b in zip(result.lrs, result.lrs[1:]):
        assert b / a == pytest.approx(growth, rel=1e-9)

    # smoothing: bias-corrected exponential moving average of the raw losses, beta 0.98
    avg = 0.0
    for i, (raw, smooth) in enumerate(zip(result.raw_losses, result.losses)):
        avg = 0.98 * avg + 0.02 * raw
        assert smooth == pytest.approx(avg / (1 - 0.98 ** (i + 1)), rel=1e-9)

    # the loss first falls, then blows up and the run stops early
    best = min(result.losses)
    assert best < 0.75 * max(result.losses[: result.losses.index(best)])  # (the average lags: a modest dip)
    assert result.diverged and 16 < n < STEPS
    assert result.losses[-1] > 4.0 * best
    assert all(v <= 4.0 * best for v in result.losses[result.losses.index(best) : -1])  # stopped at the first one
    assert result.min_loss_lr == result.lrs[result.losses.index(best)]

    # the suggestion lies inside the tested range, before divergence, and is a good lr to train with
    assert START < result.suggestion < result.lrs[-1]
    assert result.suggestion in result.lrs
    assert result.suggestion <= result.min_loss_lr
    initial = _full_loss(model, x, y)
    at_start = _train_epoch(model, x, y, START)
    at_suggestion = _train_epoch(model, x, y, result.suggestion)
    assert initial - at_suggestion > 10 * (initial - at_start)
    assert at_suggestion < 0.5 * initial

    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["suggestion"] == result.suggestion and d["diverged"] is True and d["lrs"] == result.lrs


def test_group_ratios_preserved_at_every_step():
    x, y = _data()
    model = _mlp()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 1e-3},
                           {"params": model[2].parameters(), "lr": 1e-2}], momentum=0.9)
    seen: list[list[float]] = []

    def step_fn(m, xb, yb):
        seen.append([g["lr"] for g in opt.param_groups])
        return nn.functional.cross_entropy(m(xb), yb)

    result = lr_range_test(model, _loader(x, y), None, opt, start_lr=START, end_lr=END, steps=50, step_fn=step_fn)
    assert len(seen) == len(result.lrs) > 5
    for (low, high), base in zip(seen, result.lrs):
        assert high == pytest.approx(base, rel=1e-12)  # the recorded lr is the largest group's
        assert low / high == pytest.approx(0.1, rel=1e-9)
    assert seen[0][1] == pytest.approx(START, rel=1e-12)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-2]


def _assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _assert_same(u, v)
    else:
        assert a == b


class Stop(Exception):
    pass


@pytest.mark.parametrize("failure", [None, Stop, KeyboardInterrupt])
def test_model_and_optimizer_restored_exactly(failure):
    x, y = _data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.AdamW([{"params": model[0].parameters(), "lr": 1e-3},
                             {"params": [*model[1].parameters(), *model[3].parameters()], "lr": 3e-3}])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5)  # adds initial_lr and changes lr
    for xb, yb in list(_loader(x, y))[:3]:  # some optimizer state (moments, step) and BatchNorm statistics
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
        sched.step()
    nn.functional.cross_entropy(model(x[:32]), y[:32]).backward()  # leftover gradients
    model.eval()
    model[1].train()  # mixed modes

    params = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(opt.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    lrs = [g["lr"] for g in opt.param_groups]
    calls = []

    def step_fn(m, xb, yb):
        calls.append(m.training)
        if failure is not None and len(calls) == 7:
            assert any(not torch.equal(v, params[k]) for k, v in m.state_dict().items())  # the run did change it
            raise failure("stop")
        return nn.functional.cross_entropy(m(xb), yb)

    if failure is None:
        result = lr_range_test(model, _loader(x, y), None, opt, start_lr=START, end_lr=END, steps=30, step_fn=step_fn)
        assert len(result.lrs) >= 7
    else:
        with pytest.raises(failure):
            lr_range_test(model, _loader(x, y), None, opt, start_lr=START, end_lr=END, steps=30, step_fn=step_fn)
    assert all(calls)  # trained in train mode

    _assert_same(params, model.state_dict())
    _assert_same(opt_state, opt.state_dict())
    assert [g["lr"] for g in opt.param_groups] == lrs
    for p, g in zip(model.parameters(), grads):
        assert torch.equal(p.grad, g)
    assert [m.training for m in model.modules()] == modes
    # the optimizer still drives the model's own parameters
    assert opt.param_groups[0]["params"][0] is model[0].weight
    before = model[0].weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model[0].weight)


@pytest.mark.parametrize("kwargs, loader", [
    ({"start_lr": 1.0, "end_lr": 1.0}, "ok"),
    ({"start_lr": 1e-2, "end_lr": 1e-3}, "ok"),
    ({"start_lr": 0.0}, "ok"),
    ({"steps": 4}, "ok"),
    ({}, "empty"),
    ({}, "empty-iterable"),
])  # fmt: skip
def test_bad_arguments(kwargs, loader):
    x, y = _data()
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    if loader == "ok":
        data = _loader(x, y)
    else:
        data = DataLoader(TensorDataset(x[:0], y[:0]), batch_size=32) if loader == "empty" else iter([])
    with pytest.raises(PerceptError) as err:
        lr_range_test(model, data, nn.CrossEntropyLoss(), opt, **kwargs)
    assert "\n" not in str(err.value)
    assert opt.param_groups[0]["lr"] == 0.1


def test_plot_writes_png_of_fixed_size(tmp_path):
    lrs = [1e-5 * 10 ** (i / 10) for i in range(40)]
    losses = [1.0 - 0.8 / (1 + math.exp(-(i - 20) / 3)) for i in range(35)] + [0.5, 1.0, 3.0, 9.0, float("nan")]
    result = LRFinderResult(lrs=lrs, losses=losses, raw_losses=[*losses[:-1], float("inf")], suggestion=lrs[20],
                            min_loss_lr=lrs[34], diverged=True)
    path = tmp_path / "lr_find.png"
    plot_lr_finder(result, path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (640, 400)
    assert [p.name for p in tmp_path.iterdir()] == ["lr_find.png"]  # no temporary file left behind
    json.dumps(result.to_dict(), allow_nan=False)


def test_grad_scaler_used_and_restored():
    x, y = _data()
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=10)
    before = copy.deepcopy(scaler.state_dict())
    scaled = []
    scale = scaler.scale
    scaler.scale = lambda loss: scaled.append(scaler.get_scale()) or scale(loss)  # spy
    result = lr_range_test(model, _loader(x, y), nn.CrossEntropyLoss(), opt, start_lr=START, end_lr=END, steps=STEPS,
                           scaler=scaler)
    assert len(scaled) == len(result.lrs) and max(scaled) > 2.0**8  # loss scaling was used (and grew)
    assert result.diverged and START < result.suggestion < result.lrs[-1]
    assert scaler.state_dict() == before
