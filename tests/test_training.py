"""Fine-tuning options: optimisers and schedules, from-scratch baselines, AMP, resume, DDP, augmented features."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from percept.cli import build_parser
from percept.device import amp_dtype
from percept.errors import InterruptedRun, PerceptError
from percept.transfer import evaluate, finetune_net, lr_groups, train_features
from percept.transfer import finetune as ft
from percept.transfer.lr_find import find_learning_rate

TINY = dict(backbone="alexnet", epochs=2, head_epochs=1, unfreeze=1, batch_size=4, device="cpu")


def _lrs(optimizer) -> list[float]:
    return [g["lr"] for g in optimizer.param_groups]


def test_schedules_shape_the_learning_rate_of_every_group():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    for kind in ("cosine", "onecycle"):
        opt = lr_groups.make_optimizer("sgd", [{"params": [params[0]], "lr": 0.1}, {"params": [params[1]], "lr": 0.01}])
        assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
        sched = lr_groups.make_scheduler(kind, opt, 100)
        trace = []
        for _ in range(100):
            trace.append(_lrs(opt))
            opt.step()
            sched.step()
        first, peak = trace[0][0], max(t[0] for t in trace)
        assert all(abs(a / b - 10) < 1e-6 for a, b in trace)  # the 10:1 ratio between groups is kept
        assert trace[-1][0] < 0.01 * peak  # both anneal to ~0
        if kind == "cosine":
            assert first == pytest.approx(0.1) and peak == pytest.approx(0.1)
        else:  # warm-up to the group's lr at 30% of the steps
            assert first < 0.01 and peak == pytest.approx(0.1, rel=1e-3)
            assert max(range(100), key=lambda i: trace[i][0]) in range(28, 32)
    with pytest.raises(PerceptError, match="unknown schedule"):
        lr_groups.make_scheduler("step", opt, 10)
    with pytest.raises(PerceptError, match="unknown optimizer"):
        lr_groups.make_optimizer("adam", [{"params": params}])


def test_sgd_onecycle_run_records_its_settings(dataset, tmp_path, monkeypatch):
    created = []
    real_sgd = torch.optim.SGD
    monkeypatch.setattr(torch.optim, "SGD", lambda groups, **kw: created.append(kw) or real_sgd(groups, **kw))
    record = ft.train_finetune(dataset, tmp_path / "run", optimizer="sgd", schedule="onecycle", augment="none", **TINY)
    assert len(created) == 2 and created[0]["momentum"] == 0.9  # one optimiser per phase
    assert record["params"]["optimizer"] == "sgd" and record["params"]["lr"] == pytest.approx(1e-2 / 5)
    # SGD's default lr, a fifth of it because the head starts from the fitted linear probe
    assert record["params"]["weight_decay"] == 5e-4 and record["params"]["schedule"] == "onecycle"
    assert [h["phase"] for h in record["history"]] == ["head", "finetune", "finetune"]


def test_scratch_baseline_has_random_weights_and_trains_everything_at_one_lr(dataset, tmp_path, monkeypatch):
    pretrained = finetune_net.FinetuneNet("alexnet", 2).state_dict()
    scratch = finetune_net.FinetuneNet("alexnet", 2, pretrained=False)
    key = "body.net.layers.conv1.weight"
    assert not torch.allclose(scratch.state_dict()[key], pretrained[key])
    assert scratch.weights_id == "random-init"
    groups = []
    real_adamw = torch.optim.AdamW
    monkeypatch.setattr(torch.optim, "AdamW", lambda g, *a, **kw: groups.append([(x["lr"], len(x["params"]))
                                                                                   for x in g]) or real_adamw(g))
    record = ft.train_finetune(dataset, tmp_path / "run", pretrained=False, lr=1e-3, augment="none", **TINY)
    assert len(groups) == 1 and {lr for lr, _ in groups[0]} == {1e-3}  # one phase, no discriminative LRs
    assert sum(n for _, n in groups[0]) == len(list(scratch.parameters()))  # every layer trains
    assert [h["phase"] for h in record["history"]] == ["scratch"] * 3 and record["weights_id"] == "random-init"
    assert evaluate([tmp_path / "run"], device="cpu")["accuracy"] == record["metrics"]["val_accuracy"]


def test_amp_dtype_choice_and_bfloat16_training_on_cpu(dataset, tmp_path):
    assert amp_dtype(None, torch.device("cpu")) is None
    assert amp_dtype(None, torch.device("cuda")) is torch.float16
    assert amp_dtype(True, torch.device("cpu")) is torch.bfloat16
    assert amp_dtype(False, torch.device("cuda")) is None
    record = ft.train_finetune(dataset, tmp_path / "run", amp=True, augment="none",
                               **{**TINY, "epochs": 1})
    assert record["params"]["amp"] == "bfloat16"
    assert all(0 < h["train_loss"] < 10 for h in record["history"])


def test_interrupted_run_resumes_exactly_where_it_stopped(dataset, tmp_path, monkeypatch):
    settings = dict(TINY, augment="light", seed=3)
    reference = ft.train_finetune(dataset, tmp_path / "whole", **settings)

    real_accuracy, calls = ft.accuracy, []

    def interrupt_second_epoch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_accuracy(*args)

    run = tmp_path / "run"
    monkeypatch.setattr(ft, "accuracy", interrupt_second_epoch)
    with pytest.raises(InterruptedRun, match="after epoch 1.*--resume"):
        ft.train_finetune(dataset, run, **settings)
    monkeypatch.setattr(ft, "accuracy", real_accuracy)
    assert (run / "checkpoint.pt").is_file() and not (run / "run.json").exists()
    with pytest.raises(PerceptError, match="holds a training run; add --resume"):
        ft.train_finetune(dataset, run, **settings)
    with pytest.raises(PerceptError, match="different settings \\(lr"):
        ft.train_finetune(dataset, run, resume=True, **dict(settings, lr=1e-3))

    resumed = ft.train_finetune(dataset, run, resume=True, **settings)
    assert resumed["resumed"] and not (run / "checkpoint.pt").exists()
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    for a, b in zip(resumed["history"], reference["history"]):  # bit-for-bit the same training
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6) and a["val_accuracy"] == b["val_accuracy"]
    whole = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    again = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(whole[k].float(), again[k].float(), atol=1e-6) for k in whole)
    with pytest.raises(PerceptError, match="already finished"):
        ft.train_finetune(dataset, run, resume=True, **settings)


def test_data_parallel_training_with_two_gloo_processes(dataset, tmp_path):
    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "percept", "train", str(dataset), "-o", str(run), "--strategy", "finetune",
               "--backbone", "alexnet", "--epochs", "1", "--head-epochs", "1", "--unfreeze", "1",
               "--batch-size", "4", "--augment", "none", "--device", "cpu", "-q"]
    env = dict(os.environ, PERCEPT_OFFLINE="1", OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("fine-tuned: best validation accuracy") == 1  # only rank 0 reports
    record = json.loads((run / "run.json").read_text())
    dist = record["distributed"]
    assert dist["world_size"] == 2 and dist["backend"] == "gloo" and dist["replicas_in_sync"]
    assert dist["train_images_per_process"] == 6  # 12 training images split between 2 processes
    assert len(record["history"]) == 2
    assert evaluate([run], device="cpu")["accuracy"] == record["metrics"]["val_accuracy"]


def test_cli_defaults_are_the_library_defaults():
    from percept.params import defaults
    from percept.transfer.finetune_params import FinetuneParams
    from percept.transfer.params import FeaturesParams

    args = build_parser().parse_args(["train", "DATA", "-o", "RUN"])
    for cls, names in ((FinetuneParams, ("epochs", "head_epochs", "unfreeze", "optimizer", "lr", "weight_decay",
                                         "momentum", "schedule", "dropout", "head_init", "label_smoothing", "augment",
                                         "patience", "val_fraction", "seed", "amp", "workers")),
                       (FeaturesParams, ("classifier", "C", "augment_copies", "val_fraction", "seed"))):
        library = defaults(cls)
        for name in names:  # an option generated from the settings class is absent when not given: its default applies
            assert getattr(args, name, library[name]) == library[name], name


def test_features_with_augmented_copies_are_cached_and_grouped(dataset, tmp_path):
    cache = tmp_path / "cache"
    record = train_features(dataset, tmp_path / "run", backbone="alexnet", augment_copies=2, cache_dir=cache,
                            device="cpu")
    assert record["augment_copies"] == 2 and record["augmentation"]["mixup"] == 0.0
    assert record["features_from_cache"] == 0 and record["metrics"]["val_accuracy"] >= 0.8
    assert len(list(cache.rglob("*.npy"))) == 12 * 3 + 6  # centre + 2 copies per training image, centre for val
    again = train_features(dataset, tmp_path / "run2", backbone="alexnet", augment_copies=2, cache_dir=cache,
                           device="cpu")
    assert again["features_from_cache"] == 12 * 3 + 6 and again["C"] == record["C"]
    with pytest.raises(PerceptError, match="augment-copies needs"):
        train_features(dataset, tmp_path / "run3", backbone="alexnet", augment="none", augment_copies=1,
                       cache_dir=cache, device="cpu")


def test_lr_find_cli_plots_and_suggests_a_learning_rate(dataset, tmp_path, capsys):
    from PIL import Image

    from percept.cli import main

    plot = tmp_path / "lr.png"
    common = ["--backbone", "alexnet", "--steps", "12", "--batch-size", "4", "--device", "cpu", "-q"]
    assert main(["lr-find", str(dataset), "-o", str(plot), *common]) == 0
    out = capsys.readouterr().out
    assert "suggested lr:" in out and "--lr " in out
    assert Image.open(plot).size == (640, 400) and sorted(p.name for p in tmp_path.iterdir()) == ["data", "lr.png"]
    assert main(["lr-find", str(dataset), "-o", str(plot), "--unfreeze", "1", "--json", *common]) == 0
    curve = json.loads(capsys.readouterr().out)
    assert curve["lrs"][0] == pytest.approx(1e-7) and curve["params"]["group_ratios"] == pytest.approx([1 / 3, 1])
    assert curve["params"]["start_lr"] < curve["suggestion"] < curve["params"]["end_lr"]
    assert main(["lr-find", str(tmp_path / "missing"), "-o", str(plot), *common]) == 2
    assert "not found" in capsys.readouterr().err


def test_softmax_layer_classifier_is_a_smoothed_linear_model(dataset, tmp_path):
    import numpy as np

    from percept.transfer.export import linear_head
    from percept.transfer.linear import SoftmaxLayer, probabilities
    from percept.transfer.runs import load_run

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1, 1, (40, 5)), rng.normal(1, 1, (40, 5)), rng.normal(3, 1, (40, 5))])
    y = np.repeat(["a", "b", "c"], 40)
    model = SoftmaxLayer(C=10.0).fit(x, y)
    assert (model.predict(x) == y).mean() > 0.9 and model.coef_.shape == (3, 5)
    proba = model.predict_proba(x)
    sharp = SoftmaxLayer(C=10.0, label_smoothing=0.0).fit(x, y).predict_proba(x)
    assert np.allclose(proba.sum(1), 1)
    assert proba.max(1).mean() < sharp.max(1).mean() - 0.02  # label smoothing keeps it from saturating

    record = train_features(dataset, tmp_path / "run", backbone="alexnet", classifier="softmax",
                            cache_dir=tmp_path / "cache", device="cpu")
    assert record["classifier"] == "softmax" and record["metrics"]["val_accuracy"] >= 0.8
    pipeline = load_run(tmp_path / "run").predictor
    features = rng.normal(0, 1, (4, pipeline[-1].coef_.shape[1])).astype(np.float32)
    folded = linear_head(pipeline)(torch.from_numpy(features)).softmax(1).detach().numpy()
    assert np.allclose(folded, probabilities(pipeline, features), atol=1e-5)  # exportable like the others


def test_predict_with_a_mismatched_or_damaged_finetuned_model_fails_in_one_line(dataset, tmp_path, capsys):
    from percept.cli import main

    run = tmp_path / "run"
    ft.train_finetune(dataset, run, augment="none", **{**TINY, "epochs": 0})
    image = str(dataset / "val" / "cat" / "00.jpg")
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "classes": ["cat", "dog", "rocket"]}))
    assert main(["predict", str(run), image]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.pt has 2 classes, run.json 3" in err[0]
    (run / "run.json").write_text(json.dumps(record))
    (run / "model.pt").write_bytes(b"not a checkpoint")
    assert main(["predict", str(run), image]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a percept fine-tuned model" in err[0]


def test_unknown_or_unused_settings_are_refused_in_one_line(dataset, tmp_path):
    with pytest.raises(PerceptError, match="unknown fine-tuning setting 'epoch'; valid: .*epochs"):
        ft.train_finetune(dataset, tmp_path / "run", epoch=3)
    with pytest.raises(PerceptError, match="unfreeze must be a number of stages or 'all'"):
        ft.train_finetune(dataset, tmp_path / "run", unfreeze="top")
    with pytest.raises(PerceptError, match="the lr range test does not use epochs, patience; drop them"):
        find_learning_rate(dataset, epochs=3, patience=1)
    assert not (tmp_path / "run").exists()
