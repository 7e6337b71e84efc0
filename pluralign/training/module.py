"""The one LightningModule of pluralign: it wraps an objective and knows nothing of the math.

An objective is a ``torch.nn.Module`` whose ``forward(batch)`` returns a dict with ``loss`` and any
scalar metrics; a Pyro ELBO, a mixture likelihood and a BT loss all fit behind it. Train, validation
and test share one step.
"""

from __future__ import annotations

import lightning as L
import torch


class ObjectiveModule(L.LightningModule):
    def __init__(self, objective: torch.nn.Module, lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.objective = objective
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs_trained = 0  # in this run: fewer than max_epochs where --resume starts from a checkpoint

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        out = self.objective(batch)
        size = len(next(iter(batch.values())))
        on_step = stage == "train"
        for key, value in out.items():
            self.log(f"{stage}/{key}", value.detach(), on_step=on_step, on_epoch=True,
                     prog_bar=key in ("loss", "accuracy"), batch_size=size, sync_dist=not on_step)
        return out["loss"]

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._step(batch, "test")

    def on_train_epoch_start(self) -> None:
        # objectives with schedules (KL annealing) read the epoch from here
        hook = getattr(self.objective, "on_epoch_start", None)
        if hook is not None:
            hook(self.current_epoch, self.trainer.max_epochs)

    def on_train_epoch_end(self) -> None:
        self.epochs_trained += 1

    def configure_optimizers(self):
        params = [p for p in self.objective.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
