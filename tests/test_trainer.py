"""percept.training.Trainer on a tiny model: resume, changed settings, time limit, Ctrl-C, mixed precision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from percept.errors import InterruptedRun, PerceptError
from percept.training import StepRange, Trainer


class Stream(Dataset):
    """Item ``g``: a random input and its target, from a generator seeded by ``g`` (the same after a resume)."""

    def __len__(self) -> int:
        return 2**31

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(4, generator=torch.Generator().manual_seed(g))
        return x, x.sum(0, keepdim=True)


def _run(checkpoint, steps, *, resume=False, interrupt_at=None, settings=None, **fit):
    """A small network with dropout (it draws from the global random state) trained by a Trainer."""
    trainer = Trainer(checkpoint, settings or {"lr": 0.05}, steps=steps, resume=resume, device="cpu")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    trainer.restore(model=net, optimizer=optimizer)

    def loss_step(batch):
        if trainer.step == interrupt_at:
            raise KeyboardInterrupt
        x, y = batch
        mse = F.mse_loss(net(x), y)
        return {"mse": mse, "total": mse + 1e-3 * net[0].weight.square().sum()}

    fit = {"checkpoint_every": 2, "log_every": 3, **fit}
    stopped = trainer.fit(trainer.loader(Stream(), batch_size=4), loss_step, optimizer, **fit)
    return trainer, net, stopped


def test_a_resumed_run_equals_an_uninterrupted_one_bit_for_bit(tmp_path):
    whole, whole_net, _ = _run(tmp_path / "whole.ckpt", 7)
    with pytest.raises(InterruptedRun) as info:
        _run(tmp_path / "part.ckpt", 7, interrupt_at=5)
    message = str(info.value)
    assert "\n" not in message and "at step 5" in message
    assert "part.ckpt' holds the state after step 4" in message and "--resume" in message
    resumed, resumed_net, stopped = _run(tmp_path / "part.ckpt", 7, resume=True)
    assert stopped == "steps" and resumed.step == 7
    for a, b in zip(whole_net.parameters(), resumed_net.parameters()):
        assert torch.equal(a, b)
    assert resumed.history == whole.history  # means over windows of 3 steps, the last one partial
    assert [h["step"] for h in whole.history] == [3, 6, 7] and set(whole.history[0]) == {"step", "mse", "total"}


def test_resume_refuses_a_changed_setting_in_one_line(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    _run(checkpoint, 4, settings={"lr": 0.05, "size": 48})  # the checkpoint of step 2 stays
    with pytest.raises(PerceptError) as info:
        Trainer(checkpoint, {"lr": 0.05, "size": 64}, steps=6, resume=True, device="cpu")
    assert str(info.value).startswith(f"cannot resume {str(checkpoint)!r} with different settings (size 48 -> 64)")
    assert "\n" not in str(info.value)
    with pytest.raises(PerceptError, match="holds a training run; add --resume"):
        Trainer(checkpoint, {"lr": 0.05, "size": 48}, steps=6, device="cpu")
    with pytest.raises(PerceptError, match="already trained 2 steps; ask for more steps"):
        Trainer(checkpoint, {"lr": 0.05, "size": 48}, steps=2, resume=True, device="cpu")
    with pytest.raises(PerceptError, match="no interrupted run to resume in .*other.ckpt'; drop --resume"):
        Trainer(tmp_path / "other.ckpt", {}, steps=6, resume=True, device="cpu")
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(PerceptError, match="run.ckpt' is damaged .*delete it"):
        Trainer(checkpoint, {"lr": 0.05, "size": 48}, steps=6, resume=True, device="cpu")


def test_a_setting_added_later_resumes_with_the_value_old_runs_used(tmp_path):
    checkpoint = tmp_path / "old.ckpt"
    _run(checkpoint, 4)  # saved before "schedule" and "styles" existed
    old = torch.load(checkpoint, weights_only=True)
    old["styles"] = ["a.jpg"]  # an old run kept this beside its settings
    torch.save(old, checkpoint)
    added_later = {"schedule": "constant", "styles": lambda saved: saved["styles"]}
    now = {"lr": 0.05, "schedule": "constant", "styles": ["a.jpg"]}
    trainer = Trainer(checkpoint, now, steps=6, resume=True, device="cpu", added_later=added_later)
    assert trainer.step == 2 and trainer.saved_at == "step 2"
    with pytest.raises(PerceptError, match=r"\(schedule 'constant' -> 'linear', styles \['a.jpg'\] -> \['b.jpg'\]\)"):
        Trainer(checkpoint, {**now, "schedule": "linear", "styles": ["b.jpg"]}, steps=6, resume=True, device="cpu",
                added_later=added_later)
    with pytest.raises(PerceptError, match="schedule 'unset' -> 'constant'"):
        Trainer(checkpoint, now, steps=6, resume=True, device="cpu")


def test_the_time_limit_stops_saves_and_resumes(tmp_path):
    checkpoint, events = tmp_path / "run.ckpt", []
    trainer, _, stopped = _run(checkpoint, 50, max_minutes=1e-9, checkpoint_every=0,
                               before_save=lambda: events.append("save"),
                               after_step=lambda batch, losses: events.append(("step", sorted(losses))))
    assert stopped == "time limit" and trainer.step == 1 and trainer.stopping
    assert events == ["save", ("step", ["mse", "total"])]  # the model goes with the checkpoint, then the step's hook
    assert torch.load(checkpoint, weights_only=True)["step"] == 1
    again, _, stopped = _run(checkpoint, 3, resume=True)
    assert stopped == "steps" and again.step == 3


def test_ctrl_c_before_the_first_checkpoint_says_so(tmp_path):
    with pytest.raises(InterruptedRun, match="at step 1; no checkpoint was written yet \\(one every 2 steps\\); "
                                             "start again"):
        _run(tmp_path / "run.ckpt", 5, interrupt_at=1)
    assert not (tmp_path / "run.ckpt").exists()


def test_a_loss_that_is_not_finite_stops_in_one_line(tmp_path):
    trainer = Trainer(tmp_path / "run.ckpt", {}, steps=3, device="cpu")
    weight = nn.Parameter(torch.ones(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    with pytest.raises(PerceptError, match="the loss became nan at step 1; lower lr"):
        trainer.fit([None] * 3, lambda batch: weight.sum() * float("nan"), optimizer)


def test_mixed_precision_is_off_on_the_cpu_by_default(tmp_path):
    plain = Trainer(tmp_path / "a.ckpt", {}, device="cpu")
    assert plain.dtype is None and plain.amp is None and not plain.scaler.is_enabled()
    assert plain.memory_format == torch.contiguous_format
    amp = Trainer(tmp_path / "b.ckpt", {}, device="cpu", amp=True)
    assert amp.dtype is torch.bfloat16 and amp.amp == "bfloat16" and not amp.scaler.is_enabled()  # no float16
    assert amp.memory_format == torch.channels_last
    conv = amp.prepare(nn.Conv2d(3, 4, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with amp.autocast():
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16


def test_the_loader_starts_at_the_step_of_a_resumed_run():
    assert list(StepRange(3, 6)) == [3, 4, 5] and len(StepRange(6, 3)) == 0
    trainer = Trainer("unused.ckpt", {}, steps=5, device="cpu")
    trainer.step = 3
    batches = list(trainer.loader(Stream(), batch_size=2))
    assert len(batches) == 2 and torch.equal(batches[0][0][0], Stream()[6][0])
