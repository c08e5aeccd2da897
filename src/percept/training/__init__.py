"""One training loop for every percept trainer.

:class:`Trainer` owns what all of them share: the device and mixed precision (autocast, float16 loss scaling,
channels-last), the data loader (worker default, pinned memory, a sampler that resumes at a step), atomic
checkpoints, resuming (one error naming each changed setting ``name old -> new``; settings added later resume with
the value old runs used), a time limit, the progress bar and Ctrl-C (:class:`~percept.errors.InterruptedRun`
saying where the saved state is and how to resume). A trainer keeps its loss step, its data, model and outputs::

    from percept.training import Trainer

    def train_upscaler(data, out, *, steps=1000, lr=1e-3, seed=0, resume=False, device="auto"):
        trainer = Trainer(f"{out}.ckpt", {"data": str(data), "lr": lr, "seed": seed}, steps=steps,
                          resume=resume, device=device, name=out)
        torch.manual_seed(seed)
        net = trainer.prepare(Upscaler())
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        trainer.restore(model=net, optimizer=optimizer)       # a resumed run continues bit for bit

        def loss_step(batch):                                 # under autocast; returns a loss or a dict with "total"
            small, large = (x.to(trainer.device) for x in batch)
            return F.l1_loss(net(small), large)

        trainer.fit(trainer.loader(Pairs(data, seed), batch_size=16), loss_step, optimizer,
                    checkpoint_every=500, progress=True)
        save_upscaler(net, out, history=trainer.history)
        trainer.finish()                                      # the run is complete: remove the checkpoint

A trainer that counts epochs (fine-tuning) uses the same pieces inside :meth:`Trainer.session`:
:meth:`~Trainer.train_step` per batch and :meth:`~Trainer.save` after each epoch.
"""

from .checkpoint import changed_settings, load_checkpoint, save_checkpoint
from .loader import StepRange, default_workers, loader_options, step_loader
from .trainer import Trainer

__all__ = ["StepRange", "Trainer", "changed_settings", "default_workers", "load_checkpoint", "loader_options",
           "save_checkpoint", "step_loader"]
