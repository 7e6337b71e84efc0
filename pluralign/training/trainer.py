"""Build a Lightning ``Trainer`` from the user's options: accelerator, devices, strategy, precision,
progress bar, CSV logs, checkpoints (``last.ckpt``) and resuming from them."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import warnings
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import torch

from pluralign.io import RUN_CONFIG, RUN_WEIGHTS, atomic_path, counted, first_line, state_mismatches, write_text
from pluralign.training.module import FROZEN_KEY, ObjectiveModule, random_state, set_random_state


# Lightning's advice that does not apply here: validation is optional, tiny datasets have few batches, a
# fine-tuned backbone's frozen layers stay in eval mode on purpose (pluralign.backbones.tuned)
for _message in (".*validation_step.*val_dataloader.*", ".*smaller than the logging interval.*",
                 ".*module\\(s\\) in eval mode at the start of training.*",
                 ".*LeafSpec.*is deprecated.*", ".*does not have many workers.*",
                 ".*Experiment logs directory.*exists and is not empty.*"):
    warnings.filterwarnings("ignore", message=_message)

# the keys under which a checkpoint carries the settings (the method's config) of the fit that wrote it, and the
# epochs it had completed (Lightning's "epoch" is the finished epoch's index in a checkpoint saved at its end)
SETTINGS_KEY, EPOCHS_KEY = "pluralign_settings", "pluralign_epochs"
FIT_MARK = ".pluralign-fit"  # marks a fit's folder, written as its training starts (claim_folder)
# settings a --resume may change: the epochs, raised to train on (check_resume refuses fewer than the checkpoint
# ran), and where embeddings are cached; any other change would leave the weights trained under one setting and the
# run's config.json naming another (the optimizer state, lr included, comes back from the checkpoint)
RESUMABLE_SETTINGS = ("epochs", "finetune_epochs", "cache_dir")
# how it trained (the TrainerOptions under the settings' key "trainer"): a resume may change these (more devices,
# another precision) with a warning, as its figures then differ from an uninterrupted fit's
TRAINER_SETTINGS = ("accelerator", "devices", "strategy", "precision")


class AtomicCheckpointIO(L.pytorch.plugins.io.TorchCheckpointIO):
    """Lightning's checkpoint writer, with its temporary file beside the checkpoint: Lightning's own stages it in
    $TMPDIR and moves it in, which across filesystems (a tmpfs /tmp) is a copy onto last.ckpt, and a kill during
    the copy left the only checkpoint to resume from truncated (and a full-size temporary in $TMPDIR)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("storage_options are not supported by pluralign's checkpoint writer")
        with atomic_path(path) as tmp:
            try:
                torch.save(checkpoint, tmp)
            except RuntimeError as err:  # torch's words for a full disk ("PytorchStreamWriter failed writing")
                raise OSError(None, f"cannot write the checkpoint ({first_line(err)})", str(path)) from None


@dataclass
class TrainerOptions:
    """How to train, as opposed to what to train (the estimator's constructor): the ``fit`` options."""

    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32-true"
    out_dir: str | None = None  # CSV logs and checkpoints go here (marked FIT_MARK; another tool's folder is
    # refused: check_folder); None keeps nothing on disk
    resume: bool = False  # continue from out_dir/checkpoints/last.ckpt when it exists
    progress: bool = True
    threads: int | None = None  # torch CPU threads for this process; small heads often run fastest on 1
    extra: dict[str, Any] = field(default_factory=dict)  # any other Trainer keyword; callbacks and plugins join
    # pluralign's (a CheckpointIO plugin replaces its atomic checkpoint writer)

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

    def check_checkpoints_are_of(self, method: str) -> None:
        """--resume into a folder of another method's fit is refused: its stages' checkpoints (MaxMin's pooled/,
        em0/, ...) are not the ones this method looks for, so the fit started over without a word beside them."""
        if not (self.resume and self.out_dir):
            return
        for path in sorted(self.checkpoint_dir().rglob("last.ckpt")):
            try:
                checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except Exception:  # a damaged checkpoint: check_resume names it, if this fit's stage reads it
                continue
            saved = checkpoint.get(SETTINGS_KEY) if isinstance(checkpoint, dict) else None
            if isinstance(saved, dict) and saved.get("method", method) != method:
                raise ValueError(f"--resume: {path} is a checkpoint of a {saved['method']} fit, not {method}; fit "
                                 "without --resume, or into another folder, to start over")

    def holds_a_fit(self) -> bool:
        """Whether ``out_dir`` holds what a pluralign fit wrote: its mark (:meth:`claim_folder`), a run's
        config.json, or a checkpoint that carries pluralign's keys. Only then are its checkpoints and logs an
        earlier fit's, to clear; another tool's folder (a Lightning project's, given as ``--out .``) is refused."""
        if not self.out_dir:
            return False
        if (Path(self.out_dir) / FIT_MARK).is_file():
            return True
        with suppress(OSError, ValueError):
            config = json.loads((Path(self.out_dir) / RUN_CONFIG).read_text(encoding="utf-8"))
            if isinstance(config, dict) and {"method", "config"} <= config.keys():
                return True
        for path in sorted(self.checkpoint_dir().rglob("last*.ckpt")):
            try:
                checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except Exception:  # damaged, or not a torch file: not known to be a fit's
                continue
            if isinstance(checkpoint, dict) and any(str(key).startswith("pluralign_") for key in checkpoint):
                return True
        return False

    def check_folder(self) -> None:
        """Before a fit: stop where ``out_dir`` holds what a fit would write over (a run's config.json or
        model.safetensors, Lightning's checkpoints/**/last*.ckpt or logs/*/metrics.csv) and no pluralign fit wrote
        it (:meth:`holds_a_fit`)."""
        if not self.out_dir:
            return
        out = Path(self.out_dir)
        theirs = [*(out / name for name in (RUN_CONFIG, RUN_WEIGHTS) if (out / name).exists()),
                  *sorted(self.checkpoint_dir().rglob("last*.ckpt")), *sorted((out / "logs").glob("*/metrics.csv"))]
        if theirs and not self.holds_a_fit():  # a transformers model's folder, a Lightning project's
            raise ValueError(f"--out {out}: holds {theirs[0]}, which no pluralign fit wrote, and a fit would replace "
                             "it; choose another folder")

    def claim_folder(self, method: str) -> None:
        """As training starts, before its first log or checkpoint: mark ``out_dir`` as a fit's (FIT_MARK), so that
        a fit stopped before its first checkpoint is known as one when run again."""
        if self.out_dir:
            write_text(Path(self.out_dir) / FIT_MARK, json.dumps({"method": method}) + "\n")

    def clear_logs(self) -> None:
        """A fresh fit (no ``resume``) into a folder an earlier fit used: remove that fit's CSV logs (each stage's
        ``logs/NAME/`` metrics.csv and hparams.yaml, resumed attempts' ``NAME-2/`` too). Lightning replaces only
        the stages this fit runs, so another method's (MaxMin's ``em0/``, ...) lay beside them as if this fit's."""
        if self.resume or not self.holds_a_fit():
            return
        logs = Path(self.out_dir) / "logs"
        for folder in (p for p in (logs.iterdir() if logs.is_dir() else ()) if p.is_dir()):  # glob("*/"): files too
            for name in ("metrics.csv", "hparams.yaml"):  # what CSVLogger writes; anything else stays
                (folder / name).unlink(missing_ok=True)
            with suppress(OSError):  # a folder that holds something else stays
                folder.rmdir()

    def clear_checkpoints(self) -> None:
        """A fresh fit (no ``resume``) into a folder an earlier fit used: remove the checkpoints that fit left
        (only Lightning's ``last*.ckpt`` files that :func:`build_trainer` asks for), so that ``last.ckpt`` is
        always this fit's; left in place, Lightning would write ``last-v1.ckpt`` beside the stale one."""
        if self.resume or not self.holds_a_fit():
            return
        root = self.checkpoint_dir()
        for stale in (*root.glob("last*.ckpt"), *root.glob("*/last*.ckpt")):
            stale.unlink(missing_ok=True)


@contextmanager
def caller_random_state() -> Iterator[None]:
    """A fit seeds Python's, numpy's and torch's global generators (Lightning's ``seed_everything``) for its own
    draws; the caller gets them back as they were, so fitting a model does not change the caller's experiment (nor
    its deterministic-algorithms mode, which the fit sets for the whole process, nor its thread count, which
    ``threads`` sets for the fit alone)."""
    states = random_state()
    # and the process-wide mode Trainer(deterministic=True) sets, and the thread count of TrainerOptions.threads
    threads = torch.get_num_threads()
    env = {name: os.environ.get(name) for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "CUBLAS_WORKSPACE_CONFIG")}
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.set_num_threads(threads)
        set_random_state(states)
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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


@contextmanager
def interrupt_as_keyboard_interrupt(trainer: L.Trainer) -> Iterator[None]:
    """Lightning answers Ctrl-C in ``Trainer.fit`` with a graceful shutdown, then ``sys.exit(1)``, with SIGINT
    ignored from then on: a notebook's fit ended its cell as an exit and left Ctrl-C dead, and the CLI said
    nothing. The caller gets a KeyboardInterrupt instead, and Ctrl-C its handler back (the checkpoint of the last
    finished epoch stays, for --resume)."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit:
        if not trainer.interrupted:
            raise
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)
        raise KeyboardInterrupt from None


@contextmanager
def quiet_moved_checkpoints() -> Iterator[None]:
    """A run folder moved or copied before --resume: Lightning warns (from its site-packages) that it drops the
    best-k bookkeeping of the old checkpoint folder; there is none to keep (the one checkpoint is last.ckpt, rewritten
    in the new folder). A resumed or repeated fit writes last.ckpt into a folder that holds one: Lightning warns of
    that too. Filtered here, around the fit, as a filter set at import does not outlive pytest's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*The dirpath has changed from.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
        yield


def check_trainer_options(options: TrainerOptions) -> None:
    """Stop before any work where Lightning would refuse the accelerator, devices, strategy or precision (at the
    start of training, after the embedding, in a traceback): a one-line error naming the option."""
    accelerator = str(options.accelerator).lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available() and not (
            accelerator == "gpu" and torch.backends.mps.is_available()):
        raise ValueError(f"--accelerator {options.accelerator}: no GPU is available on this machine")
    try:
        with quiet_lightning():
            L.Trainer(accelerator=options.accelerator, devices=options.devices, strategy=options.strategy,
                      precision=options.precision, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)
    except Exception as err:  # Lightning raises MisconfigurationException, ValueError, TypeError or ImportError
        message = " ".join(str(err).split()) or type(err).__name__
        flags = {"accelerator": options.accelerator, "devices": options.devices, "strategy": options.strategy,
                 "precision": options.precision}
        named = [f"--{k} {v}" for k, v in flags.items() if k in message.lower()] or \
            [f"--{k} {v}" for k, v in flags.items()]
        raise ValueError(f"{named[0] if len(named) == 1 else ' '.join(named)}: {message}") from None


def plain_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as a checkpoint stores them: JSON's types (a tuple as a list), so that torch.load reads them
    with ``weights_only`` and a fit's settings compare equal to those of the fit that wrote the checkpoint."""
    return json.loads(json.dumps(settings, default=str))


class RecordSettings(L.pytorch.callbacks.Callback):
    """Writes the fit's settings into every checkpoint, for :func:`check_resume` to compare a resumed fit's with."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = plain_settings(settings)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[SETTINGS_KEY] = self.settings
        checkpoint[EPOCHS_KEY] = trainer.current_epoch + 1  # saved at an epoch's end (ModelCheckpoint below)


def changed_settings(saved: Any, settings: dict[str, Any] | None) -> list[str]:
    """'name=old (this fit: new)' for each setting other than RESUMABLE_SETTINGS and the trainer's that differs; none
    where the checkpoint predates recorded settings, and none for a setting one side lacks (added since, or another
    method's, which the state check names)."""
    if not isinstance(saved, dict) or settings is None:
        return []
    now = plain_settings(settings)
    return [f"{k}={saved[k]!r} (this fit: {now[k]!r})" for k in saved
            if k in now and k not in (*RESUMABLE_SETTINGS, "trainer") and saved[k] != now[k]]


def check_resume(path: str, module: torch.nn.Module, max_epochs: int, name: str = "fit",
                 settings: dict[str, Any] | None = None) -> int:
    """--resume: the checkpoint must be readable, of this model, not past the epochs this fit trains, and written
    with this fit's ``settings`` but for RESUMABLE_SETTINGS; Lightning would otherwise fail in the middle of the
    fit with many lines (or a key listing of the state), or train on under settings the weights never saw.
    Returns the epochs the checkpoint had run (0 where it does not say)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # no pickle code runs
    except Exception as err:  # a truncated or foreign file: zip, pickle or EOF errors
        reason = first_line(err).split(". ")[0]  # torch adds paragraphs of advice, and mmap "Invalid argument"
        size = counted(Path(path).stat().st_size, "byte") if Path(path).is_file() else "not a file"
        raise ValueError(f"--resume: {path}: cannot read the checkpoint, damaged or truncated ({size}; {reason}); "
                         "fit without --resume to start over") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"--resume: {path}: not a Lightning checkpoint (no state_dict)")
    frozen = module.frozen_state() if isinstance(module, ObjectiveModule) else {}
    if frozen and checkpoint.get(FROZEN_KEY, module.frozen_sha256()) != module.frozen_sha256():
        raise ValueError(f"--resume: {path} was trained on other frozen backbone weights (another backbone, or "
                         "its files changed); fit without --resume to start over")
    # the settings first: other training data (more users) or another method also makes the shapes differ, but
    # the settings say which
    saved = checkpoint.get(SETTINGS_KEY)
    if changed := changed_settings(saved, settings):
        raise ValueError(f"--resume: {path} was trained with other settings: {', '.join(changed)}; resume with the "
                         f"checkpoint's settings (only {', '.join(RESUMABLE_SETTINGS)} may change), or fit without "
                         "--resume to start over")
    # frozen weights are left out of checkpoints (those of before hold them: either way, the model has them)
    expected = {k: v for k, v in module.state_dict().items() if k not in frozen}
    problems = state_mismatches(expected, {k: v for k, v in state.items() if k not in frozen}, "the checkpoint")
    if problems:
        more = f"; {len(problems)} mismatches in all" if len(problems) > 1 else ""
        raise ValueError(f"--resume: {path} is not a checkpoint of this model (another method, or other settings: "
                         f"{problems[0]}{more}); fit without --resume to start over")
    epoch = checkpoint.get(EPOCHS_KEY, checkpoint.get("epoch"))  # a checkpoint of before: saved when training ended
    if isinstance(epoch, int) and epoch > max_epochs:
        option = {"fit": "epochs", "finetune": "finetune_epochs"}.get(name)
        past = (f"this fit's {option}={max_epochs} (the preset's or --set's; train on with --set {option}=N, "
                f"N > {epoch})") if option else f"the {max_epochs} epochs of its stage {name!r}"
        raise ValueError(f"--resume: {path} is at epoch {epoch}, past {past}")
    if changed := changed_settings((saved or {}).get("trainer"), (settings or {}).get("trainer")):
        logging.getLogger("pluralign").warning(
            "--resume: %s was trained with %s; the fit goes on so, and its figures will differ from an uninterrupted "
            "fit's", path, ", ".join(changed))
    return epoch if isinstance(epoch, int) else 0


def build_trainer(options: TrainerOptions, max_epochs: int, name: str = "fit",
                  settings: dict[str, Any] | None = None) -> L.Trainer:
    """The Trainer for one stage ``name``; its checkpoints carry ``settings`` (the method's config) where given."""
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
            # last.ckpt at every epoch's end, for --resume after an interruption: save_last with save_top_k=0
            # writes it only when training ends; the one "top" checkpoint of no monitor is the latest, named last
            L.pytorch.callbacks.ModelCheckpoint(dirpath=str(options.checkpoint_dir(name)), filename="last",
                                                save_top_k=1, enable_version_counter=False,
                                                save_on_train_epoch_end=True),
            *([RecordSettings(settings)] if settings is not None else []),
        ]
        kwargs["default_root_dir"] = str(out)
        kwargs["plugins"] = [AtomicCheckpointIO()]
    else:
        kwargs["logger"] = False
        kwargs["enable_checkpointing"] = False
    extra = dict(options.extra)
    for key in ("callbacks", "plugins"):  # the caller's beside ours: a --resume needs our checkpoints
        if key in kwargs and key in extra:
            given = extra.pop(key)
            given = list(given) if isinstance(given, (list, tuple)) else [given]
            if key == "plugins" and any(isinstance(p, L.pytorch.plugins.io.CheckpointIO) for p in given):
                kwargs[key] = []  # they write the checkpoints their own way
            kwargs[key] = [*given, *kwargs[key]]
    kwargs.update(extra)
    return L.Trainer(**kwargs)
