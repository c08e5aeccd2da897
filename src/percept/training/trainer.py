"""The :class:`Trainer`: what every percept training loop shares, so that a trainer writes only its loss step."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..device import amp_dtype, channels_last, resolve_device
from ..errors import InterruptedRun, PerceptError
from .checkpoint import SETTINGS_KEY, AddedLater, open_checkpoint, save_checkpoint
from .loader import step_loader

#: ``loss_step(batch)`` returns the loss to minimise, or a dict of losses whose ``total`` is minimised (the other
#: entries are logged with it). It runs under the trainer's autocast; it moves the batch to the device itself.
LossStep = Callable[[Any], "torch.Tensor | Mapping[str, torch.Tensor]"]


class Trainer:
    """Device, mixed precision, checkpoints, resume, time limit, progress and interruption of one training run.

    Args:
        checkpoint: the checkpoint file (its folder must exist when the first checkpoint is written).
        settings: what must not change when the run is resumed (JSON-able values); stored in every checkpoint.
            Resuming with a different value raises one line naming each change ``name old -> new``.
        resume: continue the run saved in ``checkpoint`` (else refuse to start over an existing one).
        steps: the optimisation steps the run goes to (may be raised on resume); ``None`` for a trainer that counts
            epochs itself.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or a ``torch.device``.
        amp: mixed precision (``None``: on CUDA only; see :func:`percept.device.amp_dtype`); float16 comes with
            loss scaling (``scaler``). :meth:`prepare` puts modules in the channels-last memory format on CUDA and
            on the CPU with ``amp`` (:func:`percept.device.channels_last`).
        name: what the user chose (output file or folder), named in messages; default the checkpoint.
        done: a file whose presence means the run finished (said when there is nothing to resume).
        added_later: settings added after some runs were saved, with the value those runs used (or a function of
            the old checkpoint returning it), so that they still resume.
        main: whether this process writes checkpoints and shows progress (rank 0 of data-parallel training).
        started: ``time.perf_counter()`` when the run's call began (default: now); ``max_minutes`` counts from it.

    Attributes:
        step: optimisation steps done, counted over resumes.
        history: logged losses (``{"step": ..., name: mean, ...}``), also counted over resumes.
        saved: the checkpoint the run resumed from (``{}`` for a new run); its other entries are the trainer's own.
    """

    def __init__(self, checkpoint: str | Path, settings: Mapping[str, Any], *, resume: bool = False,
                 steps: int | None = None, device: str | torch.device = "auto", amp: bool | None = None,
                 name: str | Path | None = None, done: Path | None = None, added_later: AddedLater | None = None,
                 main: bool = True, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.checkpoint, self.settings = Path(checkpoint), dict(settings)
        self.name = str(checkpoint if name is None else name)
        self.steps, self.main, self.resumed = steps, main, resume
        self.device = resolve_device(device)
        self.dtype = amp_dtype(amp, self.device)
        self.memory_format = torch.channels_last if channels_last(self.device, self.dtype) else torch.contiguous_format
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.step, self.history, self.window = 0, [], {}
        self.saved_at: str | None = None  # where the last checkpoint stands, e.g. "step 500"
        self.stopping = False  # set by fit() at the step where the time limit is reached
        self.bar: Any = None
        self._objects: dict[str, Any] = {}
        self._save_hint = ""
        self.saved = open_checkpoint(self.checkpoint, self.settings, resume=resume, name=self.name, done=done,
                                     added_later=added_later)
        if self.saved:
            self.step = int(self.saved.get("step", 0))
            self.history, self.window = list(self.saved.get("history", [])), dict(self.saved.get("window", {}))
            self.saved_at = self.saved.get("saved_at", f"step {self.step}")
            if self.saved.get("scaler"):  # empty when saved without float16 loss scaling
                self.scaler.load_state_dict(self.saved["scaler"])
            if steps is not None and self.step >= steps:
                raise PerceptError(f"{self.name!r} already trained {self.step} steps; ask for more steps to go on")

    # ------------------------------------------------------------------------------------------------ set-up

    @property
    def amp(self) -> str | None:
        """The autocast dtype as recorded (``"bfloat16"``, ``"float16"``), ``None`` for full precision."""
        return str(self.dtype).removeprefix("torch.") if self.dtype is not None else None

    def seconds(self) -> float:
        """Wall-clock seconds since the run's call began."""
        return time.perf_counter() - self.started

    def prepare(self, module: nn.Module) -> nn.Module:
        """``module`` on the device, in the training memory format."""
        return module.to(self.device, memory_format=self.memory_format)

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision autocast (a no-op in full precision)."""
        return torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None else nullcontext()

    def loader(self, dataset: Dataset, *, batch_size: int | None = None, workers: int | None = None) -> DataLoader:
        """The batches of the steps still to train, from an index-addressed ``dataset`` (see
        :func:`percept.training.loader.step_loader`)."""
        if self.steps is None:
            raise ValueError("loader() needs a trainer with steps")
        return step_loader(dataset, device=self.device, start=self.step, stop=self.steps, batch_size=batch_size,
                           workers=workers)

    # ---------------------------------------------------------------------------------------- checkpoints

    def track(self, **objects: Any) -> None:
        """Save the ``state_dict()`` of each object (model, optimiser, scheduler) under its name."""
        self._objects.update(objects)

    def restore(self, **objects: Any) -> None:
        """Load each object from the checkpoint of a resumed run (nothing for a new run), then :meth:`track` it."""
        for key, obj in objects.items():
            if self.saved:
                if key not in self.saved:
                    raise PerceptError(f"{str(self.checkpoint)!r} holds no {key} state; delete it to start the run "
                                       "again")
                obj.load_state_dict(self.saved[key])
        self.track(**objects)

    def save(self, *, at: str | None = None, **extra: Any) -> None:
        """Write the checkpoint: step, settings, history, random state, loss scaler, tracked objects and ``extra``.

        ``at`` says where the run stands (default ``step N``); the interruption message repeats it.
        """
        self.saved_at = at or f"step {self.step}"
        if not self.main:
            return
        state = {"step": self.step, SETTINGS_KEY: self.settings, "history": self.history, "window": self.window,
                 "saved_at": self.saved_at, "rng": torch.get_rng_state(), "scaler": self.scaler.state_dict(),
                 **{key: obj.state_dict() for key, obj in self._objects.items()}, **extra}
        save_checkpoint(self.checkpoint, state)

    def finish(self) -> None:
        """Remove the checkpoint: the run is complete."""
        if self.main:
            self.checkpoint.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------------ the loop

    @contextmanager
    def session(self, total: int | None = None, *, desc: str = "train", unit: str = "step",
                progress: bool = False) -> Iterator[Trainer]:
        """The body of a run: restores a resumed run's random state, shows a progress bar of ``total`` (default
        ``steps``) and turns Ctrl-C into :class:`~percept.errors.InterruptedRun` saying what the checkpoint holds."""
        rng = self.saved.pop("rng", None)
        if rng is not None:
            torch.set_rng_state(rng)
        self.bar = tqdm(total=self.steps if total is None else total, initial=self.step, desc=desc, unit=unit,
                        disable=not (progress and self.main), dynamic_ncols=True)
        try:
            yield self
        except KeyboardInterrupt:
            raise InterruptedRun(self._interrupted()) from None
        finally:
            self.bar.close()

    def _interrupted(self) -> str:
        if self.saved_at is None:
            return f"training interrupted at step {self.step}; no checkpoint was written yet{self._save_hint}; start again"
        return (f"training interrupted at step {self.step}; {str(self.checkpoint)!r} holds the state after "
                f"{self.saved_at}: run the same command with --resume to continue")

    def train_step(self, batch: Any, loss_step: LossStep, optimizer: torch.optim.Optimizer, *,
                   lr: Callable[[int], float] | None = None, scheduler: Any = None) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the losses as floats (``total`` is the one minimised).

        ``lr(step)`` sets every parameter group's learning rate before the step; ``scheduler.step()`` runs after it.
        """
        if lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr(self.step)
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            losses = loss_step(batch)
        if isinstance(losses, torch.Tensor):
            losses = {"total": losses}
        self.scaler.scale(losses["total"]).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        if scheduler is not None:
            scheduler.step()
        self.step += 1
        if self.bar is not None:
            self.bar.update(1)
        values = {key: float(value.detach()) for key, value in losses.items()}
        if not math.isfinite(values["total"]):
            raise PerceptError(f"the loss became {values['total']} at step {self.step}; lower lr or the loss weights")
        return values

    def log(self, values: Mapping[str, float], every: int = 1) -> None:
        """Add ``values`` to the current window; every ``every`` steps its means go to :attr:`history`."""
        for key, value in values.items():
            self.window[key] = self.window.get(key, 0.0) + value / every
        if self.step % every == 0:
            self.history.append({"step": self.step, **self.window})
            self.window = dict.fromkeys(self.window, 0.0)
            self.postfix(**{k: v for k, v in self.history[-1].items() if k != "step"})

    def flush(self, every: int = 1) -> None:
        """Log the means of a last, partial window."""
        n = self.step % every
        if n and self.window:
            self.history.append({"step": self.step, **{k: v * every / n for k, v in self.window.items()}})

    def postfix(self, **values: Any) -> None:
        """Show ``values`` after the progress bar (floats to three significant digits)."""
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" if isinstance(v, float) else v for k, v in values.items()},
                                 refresh=False)

    def fit(self, batches: Iterable, loss_step: LossStep, optimizer: torch.optim.Optimizer, *,
            lr: Callable[[int], float] | None = None, scheduler: Any = None, log_every: int = 1,
            checkpoint_every: int = 0, keep_checkpoint: bool = False, max_minutes: float | None = None,
            before_save: Callable[[], None] | None = None, after_step: Callable[[Any, dict[str, float]], None] | None = None,
            desc: str = "train", progress: bool = False) -> str:
        """Train until ``steps`` (or the time limit); returns ``"steps"`` or ``"time limit"``.

        Every step: :meth:`train_step`, :meth:`log`, a checkpoint every ``checkpoint_every`` steps (0: none) and
        when the time limit stops the run (``before_save()`` runs first, e.g. to write the model file), then
        ``after_step(batch, losses)`` (samples, callbacks; :attr:`stopping` tells it the run stops here). At the
        last step a checkpoint is written only with ``keep_checkpoint`` (a run that can go on to more steps);
        otherwise call :meth:`finish` once the outputs are written.
        """
        self._save_hint = f" (one every {checkpoint_every} steps)" if checkpoint_every else ""
        with self.session(desc=desc, progress=progress):
            for batch in batches:
                values = self.train_step(batch, loss_step, optimizer, lr=lr, scheduler=scheduler)
                if log_every:
                    self.log(values, log_every)
                final = self.step >= self.steps
                self.stopping = not final and max_minutes is not None and self.seconds() >= 60 * max_minutes
                periodic = bool(checkpoint_every) and self.step % checkpoint_every == 0 and not final
                if self.stopping or periodic or (final and keep_checkpoint):
                    if before_save is not None:
                        before_save()
                    self.save()
                if after_step is not None:
                    after_step(batch, values)
                if self.stopping:
                    break
        if log_every:
            self.flush(log_every)
        return "time limit" if self.stopping else "steps"
