"""The trainer's options and the LightningModule by hand: which checkpoints a fresh fit removes, when a checkpoint
is resumed, the epoch check of --resume and its words per stage, the optimizer's settings."""

from __future__ import annotations

import pytest
import torch

from pluralign.training import ObjectiveModule, TrainerOptions, check_resume
from pluralign.training.trainer import changed_settings, plain_settings


def layout(root):
    (root / "config.json").write_text('{"method": "bt", "config": {}}')  # an earlier fit's folder
    files = ["last.ckpt", "last-v1.ckpt", "notes.txt", "epoch=1.ckpt", "finetune/last.ckpt", "round-1/last-v1.ckpt",
             "finetune/mine.ckpt"]
    for name in files:
        (root / "checkpoints" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "checkpoints" / name).write_text("x")
    return sorted(str(p.relative_to(root / "checkpoints")) for p in (root / "checkpoints").rglob("*") if p.is_file())


def test_a_fresh_fit_removes_every_stages_last_checkpoints_only(tmp_path) -> None:
    every = layout(tmp_path)
    TrainerOptions(out_dir=str(tmp_path), resume=True).clear_checkpoints()  # resuming: nothing goes
    assert sorted(str(p.relative_to(tmp_path / "checkpoints")) for p in (tmp_path / "checkpoints").rglob("*")
                  if p.is_file()) == every
    TrainerOptions(out_dir=str(tmp_path)).clear_checkpoints()
    assert sorted(str(p.relative_to(tmp_path / "checkpoints")) for p in (tmp_path / "checkpoints").rglob("*")
                  if p.is_file()) == ["epoch=1.ckpt", "finetune/mine.ckpt", "notes.txt"]


def test_a_fresh_fit_removes_every_stages_logs_only(tmp_path) -> None:
    """A bt fit into a folder of a MaxMin fit's kept MaxMin's logs/em0/, logs/pooled/ (and a resume's fit-2/)
    beside its own logs/fit/."""
    logs = tmp_path / "logs"
    for name in ("fit/metrics.csv", "fit/hparams.yaml", "em0/metrics.csv", "fit-2/hparams.yaml", "mine/notes.txt",
                 "mine/metrics.csv"):
        (logs / name).parent.mkdir(parents=True, exist_ok=True)
        (logs / name).write_text("x")
    (logs / "readme.txt").write_text("x")
    TrainerOptions(out_dir=str(tmp_path)).clear_logs()  # no fit's config.json nor checkpoint: not a fit's folder
    TrainerOptions(out_dir=str(tmp_path), resume=True).clear_logs()
    (tmp_path / "config.json").write_text('{"method": "maxmin", "config": {}}')
    TrainerOptions(out_dir=str(tmp_path), resume=True).clear_logs()  # resuming: nothing goes
    assert len([p for p in logs.rglob("*") if p.is_file()]) == 7
    TrainerOptions(out_dir=str(tmp_path)).clear_logs()
    assert sorted(str(p.relative_to(logs)) for p in logs.rglob("*")) == ["mine", "mine/notes.txt", "readme.txt"]
    TrainerOptions().clear_logs()  # no folder: nothing to do


def test_a_checkpoint_is_resumed_only_with_resume(tmp_path) -> None:
    (tmp_path / "checkpoints" / "finetune").mkdir(parents=True)
    (tmp_path / "checkpoints" / "last.ckpt").write_text("x")
    assert TrainerOptions(out_dir=str(tmp_path)).checkpoint_to_resume() is None
    assert TrainerOptions(out_dir=str(tmp_path), resume=True).checkpoint_to_resume() == \
        str(tmp_path / "checkpoints" / "last.ckpt")
    assert TrainerOptions(out_dir=str(tmp_path), resume=True).checkpoint_to_resume("finetune") is None


def test_resume_at_the_last_epoch_is_allowed_past_it_is_named_per_stage(tmp_path) -> None:
    module = torch.nn.Linear(2, 1)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "epoch": 2}, path)
    check_resume(str(path), module, 2)  # a finished fit of 2 epochs resumes to nothing more, not an error
    check_resume(str(path), module, 3, "finetune")
    with pytest.raises(ValueError) as err:
        check_resume(str(path), module, 1, "finetune")
    assert str(err.value) == (f"--resume: {path} is at epoch 2, past this fit's finetune_epochs=1 (the preset's or "
                              "--set's; train on with --set finetune_epochs=N, N > 2)")
    with pytest.raises(ValueError) as err:
        check_resume(str(path), module, 1, "round-1")
    assert str(err.value) == f"--resume: {path} is at epoch 2, past the 1 epochs of its stage 'round-1'"


def test_the_optimizer_takes_the_lr_the_weight_decay_and_the_trainable_parameters() -> None:
    objective = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    objective[0].requires_grad_(False)
    optimizer = ObjectiveModule(objective, lr=0.25, weight_decay=0.3).configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW) and len(optimizer.param_groups) == 1
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.25 and group["weight_decay"] == 0.3
    assert [id(p) for p in group["params"]] == [id(p) for p in objective[1].parameters()]


@pytest.mark.parametrize("content", [{"model": {}}, [1, 2], {"state_dict": "weights"}])
def test_a_checkpoint_without_a_state_dict_is_named(tmp_path, content) -> None:
    """--resume of a torch file that is not Lightning's (a plain state dict saved by hand, a list): one line."""
    path = tmp_path / "last.ckpt"
    torch.save(content, path)
    with pytest.raises(ValueError) as err:
        check_resume(str(path), torch.nn.Linear(2, 1), 2)
    assert str(err.value) == f"--resume: {path}: not a Lightning checkpoint (no state_dict)"


SETTINGS = {"method": "bt", "epochs": 2, "lr": 0.001, "seed": 0, "hidden": (8,), "cache_dir": None}


def test_resume_under_other_settings_is_refused_naming_each(tmp_path) -> None:
    """The checkpoint carries its fit's settings; a --resume that changes any but the epochs (raised, to train on)
    or the cache folder is one line naming each change, old and new: the weights were trained under the old ones
    (the optimizer state, its lr included, comes back from the checkpoint) while config.json would say the new."""
    module = torch.nn.Linear(2, 1)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "epoch": 2, "pluralign_settings": plain_settings(SETTINGS)}, path)
    assert check_resume(str(path), module, 2, settings=SETTINGS) == 2  # a tuple is the list the checkpoint holds
    assert check_resume(str(path), module, 5, settings={**SETTINGS, "epochs": 5, "cache_dir": "/elsewhere"}) == 2
    assert check_resume(str(path), module, 3, settings={**SETTINGS, "dropout": 0.5}) == 2  # an argument added since
    with pytest.raises(ValueError) as err:
        check_resume(str(path), module, 3, settings={**SETTINGS, "epochs": 3, "lr": 0.01, "seed": 1})
    assert str(err.value) == (f"--resume: {path} was trained with other settings: lr=0.001 (this fit: 0.01), seed=0 "
                              "(this fit: 1); resume with the checkpoint's settings (only epochs, finetune_epochs, "
                              "cache_dir may change), or fit without --resume to start over")


def test_resume_under_other_trainer_options_is_a_warning(tmp_path, caplog) -> None:
    """Another precision or more devices may resume a fit (a run moved to a GPU), but its figures then differ from an
    uninterrupted fit's: a warning names each change; the same options, or a checkpoint that records none, say nothing."""
    module = torch.nn.Linear(2, 1)
    path = tmp_path / "last.ckpt"
    trainer = {"accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "32-true"}
    torch.save({"state_dict": module.state_dict(), "epoch": 2,
                "pluralign_settings": plain_settings({**SETTINGS, "trainer": trainer})}, path)
    with caplog.at_level("WARNING", logger="pluralign"):
        check_resume(str(path), module, 3, settings={**SETTINGS, "trainer": trainer})
        check_resume(str(path), module, 3, settings=SETTINGS)
        assert not caplog.messages
        check_resume(str(path), module, 3, settings={**SETTINGS, "trainer": {**trainer, "accelerator": "gpu",
                                                                             "precision": "bf16-mixed"}})
    assert caplog.messages == [f"--resume: {path} was trained with accelerator='cpu' (this fit: 'gpu'), "
                               "precision='32-true' (this fit: 'bf16-mixed'); the fit goes on so, and its figures "
                               "will differ from an uninterrupted fit's"]


def test_a_checkpoint_without_settings_resumes_as_before(tmp_path) -> None:
    """Checkpoints written before they carried settings: nothing to compare, the other checks still hold."""
    module = torch.nn.Linear(2, 1)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "epoch": 1}, path)
    assert check_resume(str(path), module, 2, settings={**SETTINGS, "lr": 0.5}) == 1
    assert changed_settings(None, SETTINGS) == [] and changed_settings(SETTINGS, None) == []


class _HalfFrozen(torch.nn.Module):
    """A tuned backbone's shape: ``frozen`` never trains (named by ``frozen_state``), ``top`` does."""

    def __init__(self, frozen: float) -> None:
        super().__init__()
        self.frozen = torch.nn.Parameter(torch.full((3,), frozen), requires_grad=False)
        self.top = torch.nn.Linear(3, 1)

    def frozen_state(self) -> dict[str, torch.Tensor]:
        return {"frozen": self.frozen}


def test_checkpoints_leave_the_frozen_weights_out_and_resume_checks_their_sha256(tmp_path) -> None:
    """The checkpoint holds the trained weights and the frozen ones' sha256; a model whose frozen weights differ
    is refused; one with the same loads (not strictly: the frozen names are not in the file)."""
    from pluralign.io import fingerprint
    from pluralign.training.module import FROZEN_KEY

    module = ObjectiveModule(torch.nn.Sequential(_HalfFrozen(1.0)))
    assert not module.strict_loading and set(module.frozen_state()) == {"objective.0.frozen"}
    checkpoint = {"state_dict": module.state_dict(), "epoch": 1}
    module.on_save_checkpoint(checkpoint)
    assert set(checkpoint["state_dict"]) == {"objective.0.top.weight", "objective.0.top.bias"}
    assert checkpoint[FROZEN_KEY] == fingerprint({"objective.0.frozen": torch.ones(3)})
    path = tmp_path / "last.ckpt"
    torch.save(checkpoint, path)
    assert check_resume(str(path), ObjectiveModule(torch.nn.Sequential(_HalfFrozen(1.0))), 2) == 1
    with pytest.raises(ValueError, match=r"^--resume: .*last\.ckpt was trained on other frozen backbone weights "):
        check_resume(str(path), ObjectiveModule(torch.nn.Sequential(_HalfFrozen(2.0))), 2)
    assert ObjectiveModule(torch.nn.Linear(3, 1)).strict_loading  # nothing frozen: loaded strictly, as before


def test_only_a_folder_a_fit_wrote_is_cleared(tmp_path) -> None:
    """``fit --out .`` in a Lightning project deleted its checkpoints/last.ckpt and its logs: a folder is an
    earlier fit's by its run's config.json or a checkpoint with pluralign's keys, not by Lightning's file names."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "logs" / "version_0").mkdir(parents=True)
    (tmp_path / "logs" / "version_0" / "metrics.csv").write_text("x")
    (tmp_path / "config.json").write_text('{"model": "theirs"}')
    torch.save({"state_dict": {}, "epoch": 3}, tmp_path / "checkpoints" / "last.ckpt")
    options = TrainerOptions(out_dir=str(tmp_path))
    assert not options.holds_a_fit()
    options.clear_logs()
    options.clear_checkpoints()
    assert (tmp_path / "checkpoints" / "last.ckpt").exists() and (tmp_path / "logs" / "version_0").is_dir()
    torch.save({"state_dict": {}, "pluralign_settings": {"method": "bt"}}, tmp_path / "checkpoints" / "last.ckpt")
    assert options.holds_a_fit()  # an unfinished fit's: no config.json of a run yet
    options.clear_logs()
    options.clear_checkpoints()
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists() and not (tmp_path / "logs" / "version_0").exists()


def test_a_checkpoint_is_written_beside_itself_then_renamed(tmp_path) -> None:
    """Lightning staged last.ckpt in $TMPDIR and moved it in: across filesystems a copy, which a kill left
    truncated. A save that fails now leaves the earlier checkpoint whole and no temporary behind."""
    from pluralign.training.trainer import AtomicCheckpointIO, build_trainer

    path = tmp_path / "checkpoints" / "last.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint({"epoch": 1}, path)
    with pytest.raises(Exception):
        writer.save_checkpoint({"epoch": 2, "unsaveable": lambda: None}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1} and sorted(path.parent.iterdir()) == [path]
    trainer = build_trainer(TrainerOptions(out_dir=str(tmp_path), progress=False), max_epochs=1)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_a_callers_callbacks_and_plugins_join_ours(tmp_path) -> None:
    """TrainerOptions.extra's callbacks replaced the checkpoint callback (no last.ckpt to resume), its plugins the
    atomic checkpoint writer; and a caller's callback saw no metrics once logging was skipped where nothing read it."""
    import lightning as L

    from conftest import two_group_rows
    from pluralign.methods import METHODS
    from pluralign.training.trainer import AtomicCheckpointIO, build_trainer

    class Reader(L.pytorch.callbacks.Callback):
        seen: list = []

        def on_train_epoch_end(self, trainer, module) -> None:
            self.seen.append(sorted(trainer.callback_metrics))

    from lightning.pytorch.plugins.environments import LightningEnvironment

    environment = LightningEnvironment()
    options = TrainerOptions(out_dir=str(tmp_path), progress=False, extra={"callbacks": [Reader()],
                                                                             "plugins": [environment]})
    trainer = build_trainer(options, max_epochs=1)
    assert any(isinstance(c, L.pytorch.callbacks.ModelCheckpoint) for c in trainer.callbacks)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    train, _ = two_group_rows()
    METHODS["bt"](epochs=1).fit(train, trainer=TrainerOptions(progress=False, extra={"callbacks": [Reader()]}))
    assert Reader.seen and "train/loss" in Reader.seen[-1]
