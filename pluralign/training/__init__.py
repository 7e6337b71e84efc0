"""Training: one generic LightningModule around an objective, and the Trainer factory."""

from pluralign.training.module import ObjectiveModule
from pluralign.training.trainer import (build_trainer, caller_random_state, check_resume, check_trainer_options,
                                        quiet_lightning, TrainerOptions)

__all__ = ["ObjectiveModule", "build_trainer", "caller_random_state", "check_resume", "check_trainer_options", "quiet_lightning",
           "TrainerOptions"]
