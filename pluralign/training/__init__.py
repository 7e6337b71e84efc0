"""Training: one generic LightningModule around an objective, and the Trainer factory."""

from pluralign.training.module import ObjectiveModule
from pluralign.training.trainer import build_trainer, quiet_lightning, TrainerOptions

__all__ = ["ObjectiveModule", "build_trainer", "quiet_lightning", "TrainerOptions"]
