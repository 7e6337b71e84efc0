"""Build a Lightning ``Trainer`` from the user's options: accelerator, devices, strategy, precision,
progress bar, CSV logs, checkpoints (``last.ckpt``) and resuming from them."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import torch


# Lightning's advice that does not apply here: validation is optional, tiny datasets have few batches, a
# fine-tuned backbone's frozen layers stay in eval mode on purpose (pluralign.backbones.tuned)
for _message in (".*validation_step.*val_dataloader.*", ".*smaller than the logging interval.*",
                 ".*module\\(s\\) in eval mode at the start of training.*",
                 ".*LeafSpec.*is deprecated.*", ".*does not have many workers.*",
                 ".*Experiment logs directory.*exists and is not empty.*"):
    warnings.filterwarnings("ignore", message=_message)


@dataclass
class TrainerOptions:
    """How to train, as opposed to what to train (the estimator's constructor): the ``fit`` options."""

    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32-true"
    out_dir: str | None = None  # CSV logs and checkpoints go here; None keeps nothing on disk
    resume: bool = False  # continue from out_dir/checkpoints/last.ckpt when it exists
    progress: bool = True
    threads: int | None = None  # torch CPU threads for this process; small heads often run fastest on 1
    extra: dict[str, Any] = field(default_factory=dict)  # any other Trainer keyword

    def checkpoint_dir(self, name: str = "fit") -> Path:
        """checkpoints/ for the main run; checkpoints/NAME/ for any other stage of the same fit (PAL's
        fine-tuning, MaxMin's EM rounds), so resuming never loads one stage's weights into another."""
        root = Path(self.out_dir or ".") / "checkpoints"
        return root if name == "fit" else root / name

    def checkpoint_to_resume(self, name: str = "fit") -> str | None:
        if not (self.resume and self.out_dir):
            return None
        last = self.checkpoint_dir(name) / "last.ckpt"
        return str(last) if last.exists() else None


class _NoAdvert(logging.Filter):
    """Lightning advertises its cloud logger whenever a Trainer gets another logger: a `pluralign fit` would
    print it once per training run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


_RANK_ZERO = logging.getLogger("lightning.pytorch.utilities.rank_zero")
if not any(isinstance(f, _NoAdvert) for f in _RANK_ZERO.filters):
    _RANK_ZERO.addFilter(_NoAdvert())


@contextmanager
def quiet_lightning(quiet: bool = True) -> Iterator[None]:
    """Lightning's info lines (devices, "max_epochs reached") held back for the duration, where a fit runs
    without a progress bar; the loggers' levels are restored after, so a later fit in the process can speak."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning")]
    levels = [logger.level for logger in loggers]
    if quiet:
        for logger in loggers:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def build_trainer(options: TrainerOptions, max_epochs: int, name: str = "fit") -> L.Trainer:
    if options.threads is not None:
        if options.threads < 1:
            raise ValueError(f"threads={options.threads} must be at least 1")
        torch.set_num_threads(options.threads)
    kwargs: dict[str, Any] = dict(
        max_epochs=max_epochs,
        accelerator=options.accelerator,
        devices=options.devices,
        strategy=options.strategy,
        precision=options.precision,
        enable_progress_bar=options.progress,
        enable_model_summary=False,
        deterministic=True,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
    )
    if options.out_dir:
        out = Path(options.out_dir)
        version = name
        if options.checkpoint_to_resume(name):  # keep the earlier run's logs: a resumed run logs beside them
            attempt = 2
            while (out / "logs" / f"{name}-{attempt}").exists():
                attempt += 1
            version = f"{name}-{attempt}"
        kwargs["logger"] = L.pytorch.loggers.CSVLogger(save_dir=str(out), name="logs", version=version)
        kwargs["callbacks"] = [
            L.pytorch.callbacks.ModelCheckpoint(dirpath=str(options.checkpoint_dir(name)), save_last=True, save_top_k=0)
        ]
        kwargs["default_root_dir"] = str(out)
    else:
        kwargs["logger"] = False
        kwargs["enable_checkpointing"] = False
    kwargs.update(options.extra)
    return L.Trainer(**kwargs)
