"""The one LightningModule of pluralign: it wraps an objective and knows nothing of the math.

An objective is a ``torch.nn.Module`` whose ``forward(batch)`` returns a dict with ``loss`` and any
scalar metrics; a Pyro ELBO, a mixture likelihood and a BT loss all fit behind it. Train, validation
and test share one step.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch

from pluralign.backbones.tuned import frozen_entries
from pluralign.io import fingerprint

# a checkpoint's sha256 of the frozen backbone weights it leaves out (see on_save_checkpoint)
FROZEN_KEY = "pluralign_frozen_sha256"
# and the global random generators' states at the epoch's end it was saved at (see on_load_checkpoint)
RANDOM_STATE_KEY = "pluralign_random_state"


def random_state() -> dict[str, Any]:
    """Python's, numpy's, torch's (and CUDA's, where it is in use) global generator states, as tensors and lists
    that a checkpoint keeps and ``torch.load(weights_only=True)`` reads back."""
    version, words, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {"python": [version, list(words), gauss],
                             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    """The generators back as :func:`random_state` found them (CUDA's only onto as many devices)."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class ObjectiveModule(L.LightningModule):
    def __init__(self, objective: torch.nn.Module, lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.objective = objective
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs_trained = 0  # in this run: fewer than max_epochs where --resume starts from a checkpoint
        self._frozen_sha256: str | None = None
        # a checkpoint leaves the frozen backbone weights out; the model already holds them (check_resume
        # compares their sha256 and the state's names before Lightning loads)
        self.strict_loading = not self.frozen_state()

    def frozen_state(self) -> dict[str, torch.Tensor]:
        """The state entries a "Large" fit never changes, by this module's state names (none on cached features)."""
        return frozen_entries(self)

    def frozen_sha256(self) -> str:
        if self._frozen_sha256 is None:  # hashed once: these weights do not change
            self._frozen_sha256 = fingerprint(self.frozen_state())
        return self._frozen_sha256

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RANDOM_STATE_KEY] = random_state()
        # the backbone's own files hold its frozen weights: a checkpoint of them would be 90 MB of copies
        frozen = self.frozen_state()
        if frozen:
            for name in frozen:
                checkpoint["state_dict"].pop(name, None)
            checkpoint[FROZEN_KEY] = self.frozen_sha256()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # --resume: the next epoch's shuffle (drawn from torch's global generator) and any sampling in the
        # objective (VPL's z) take the draws they would have taken had the fit gone on: the resumed fit is the
        # uninterrupted one, bit for bit. Checkpoints of before hold no state: those resume close to it.
        if RANDOM_STATE_KEY in checkpoint:
            set_random_state(checkpoint[RANDOM_STATE_KEY])

    def on_fit_start(self) -> None:
        # Lightning's self.log costs about 1 ms a metric a step (its result collection moves each metric's state
        # "to the device" through apply_to_collection): a third of a PAL fit. Metrics are logged only where
        # something reads them: a logger, the progress bar, a callback that monitors one, or a caller's own
        # callback (TrainerOptions.extra), which may read trainer.callback_metrics
        trainer = self.trainer
        ours = ("lightning.", "pytorch_lightning.", "pluralign.")
        self._log_metrics = bool(trainer.loggers) or trainer.progress_bar_callback is not None or any(
            getattr(callback, "monitor", None) or not type(callback).__module__.startswith(ours)
            for callback in trainer.callbacks)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        out = self.objective(batch)
        if not getattr(self, "_log_metrics", True):
            return out["loss"]
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
