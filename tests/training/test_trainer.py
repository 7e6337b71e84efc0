"""The Trainer factory's side effects: a quiet fit silences Lightning only while it runs; what a checkpoint carries
for --resume."""

import logging
import warnings

import pytest
import torch

from conftest import two_group_rows
from pluralign.methods import BradleyTerry
from pluralign.training import quiet_lightning


def test_quiet_lightning_restores_the_levels():
    logger = logging.getLogger("lightning.pytorch")
    before = logger.level
    with quiet_lightning():
        assert logger.level == logging.WARNING
    assert logger.level == before
    with quiet_lightning(False):
        assert logger.level == before


def test_a_fit_without_progress_leaves_lightning_as_it_found_it():
    logger = logging.getLogger("lightning.pytorch")
    logger.setLevel(logging.INFO)
    train, _ = two_group_rows(n_users=2, pairs=20)
    BradleyTerry(epochs=1, hidden=[]).fit(train, progress=False)
    assert logger.level == logging.INFO  # a later fit with a progress bar still prints its info lines


def test_resume_refuses_other_settings_and_says_when_nothing_is_left(tmp_path, caplog):
    """A --resume with another lr was taken without a word: no epoch trained, yet the run's config said the new lr.
    A resume of a finished fit (from a moved folder) trains nothing and says so, without Lightning's warning that
    the checkpoint folder changed."""
    train, _ = two_group_rows(n_users=2, pairs=20)
    run, moved = tmp_path / "run", tmp_path / "moved"
    BradleyTerry(epochs=1, hidden=[]).fit(train, out_dir=str(run), progress=False)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["pluralign_settings"]
    assert (saved["method"], saved["lr"], saved["hidden"]) == ("bt", 0.001, [])
    assert saved["trainer"] == {"accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "32-true"}
    with pytest.raises(ValueError, match=r"last.ckpt was trained with other settings: lr=0.001 \(this fit: 0.01\); "):
        BradleyTerry(epochs=1, hidden=[], lr=0.01).fit(train, out_dir=str(run), resume=True, progress=False)
    run.rename(moved)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="pluralign"):
        model = BradleyTerry(epochs=1, hidden=[]).fit(train, out_dir=str(moved), resume=True, progress=False)
    assert model.fit_stats_["epochs"] == 0
    assert caplog.messages == ["bt: --resume: already at epoch 1 of 1: nothing to train"]
    assert not [w for w in caught if "dirpath" in str(w.message)]


def test_resume_on_other_pairs_or_users_in_another_order_is_refused(tmp_path):
    """A user's row of weights is their place in user_ids: resuming on the same rows in reverse order gave u1's
    vector to u0 (and any other data was trained on without a word). The checkpoint records what it trained on."""
    from pluralign.methods import PalA

    train, _ = two_group_rows(n_users=2, pairs=20)
    run = tmp_path / "run"
    PalA(epochs=1, k=2).fit(train, out_dir=str(run), progress=False)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["pluralign_settings"]
    assert saved["training_data"].startswith("40 pairs of 2 users, sha256 ")
    # more users: the weights' shapes differ too, but the settings say why (it said "another method, or other
    # settings: ...weights.logits: [2, 2] in the checkpoint, [3, 2] in the model")
    more_users = two_group_rows(n_users=3, pairs=20)[0]
    for rows in (train[::-1], train[:-1], more_users):
        with pytest.raises(ValueError, match=r"last.ckpt was trained with other settings: training_data='40 pairs "
                                             r"of 2 users, sha256 \w+' \(this fit: '(40|39|60) pairs of [23] users"):
            PalA(epochs=2, k=2).fit(rows, out_dir=str(run), resume=True, progress=False)
    assert PalA(epochs=2, k=2).fit(train, out_dir=str(run), resume=True, progress=False).fit_stats_["epochs"] == 1


@pytest.mark.parametrize("method", ["bt", "vpl"])
def test_an_interrupted_fit_resumes_into_the_uninterrupted_fit_bit_for_bit(method, tmp_path, monkeypatch):
    """last.ckpt is written at every epoch's end: with save_last and save_top_k=0 Lightning wrote it only when
    training ended, so a fit stopped partway (Ctrl-C, a killed job) left nothing for --resume. The checkpoint holds
    the global generators' states too: without them the resumed epochs shuffled the pairs (and VPL drew its z)
    otherwise, and the weights differed from an uninterrupted fit's (by 0.08 for VPL)."""
    from pluralign.methods import VPL
    from pluralign.training.module import ObjectiveModule

    def make():
        return BradleyTerry(epochs=3, hidden=[8]) if method == "bt" else VPL(epochs=3)

    train, _ = two_group_rows(n_users=4, pairs=20)
    uninterrupted = weights(make().fit(train, progress=False))
    run = tmp_path / "run"
    real_end = ObjectiveModule.on_train_epoch_end

    def stop_at_the_second_epoch(self):
        if self.current_epoch == 1:
            raise RuntimeError("stopped")
        return real_end(self)

    monkeypatch.setattr(ObjectiveModule, "on_train_epoch_end", stop_at_the_second_epoch)
    with pytest.raises(RuntimeError, match="stopped"):
        make().fit(train, out_dir=str(run), progress=False)
    monkeypatch.undo()
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["last.ckpt"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["pluralign_epochs"] == 1
    torch.manual_seed(123)  # the caller's generator does not reach the resumed epochs
    model = make().fit(train, out_dir=str(run), resume=True, progress=False)
    assert model.fit_stats_["epochs"] == 2  # the first epoch came from the checkpoint
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    resumed = weights(model)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_a_fit_leaves_the_deterministic_mode_as_it_found_it():
    """Trainer(deterministic=True) switches torch's deterministic algorithms on for the whole process (and sets
    CUBLAS_WORKSPACE_CONFIG): a policy trained afterwards in the same process would run under them."""
    import os

    train, _ = two_group_rows(n_users=2, pairs=20)
    before = torch.are_deterministic_algorithms_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    BradleyTerry(epochs=1, hidden=[]).fit(train, progress=False)
    assert (torch.are_deterministic_algorithms_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG")) == before


def weights(model) -> dict:
    return {k: v.clone() for k, v in model.network_.state_dict().items()}


def test_validation_rows_leave_the_training_shuffle_as_it_was():
    """Each validation pass drew its loader's seed from the global generator that shuffles the training pairs: the
    same seed and rows gave other weights from the second epoch on when val_data was given."""
    train, test = two_group_rows(n_users=2, pairs=30)
    alone = weights(BradleyTerry(epochs=3, hidden=[8]).fit(train, progress=False))
    validated = weights(BradleyTerry(epochs=3, hidden=[8]).fit(train, val_data=test, progress=False))
    assert all(torch.equal(alone[k], validated[k]) for k in alone)


def test_maxmin_counts_every_stage_and_a_raised_epochs_retrains_the_stages_after(tmp_path, caplog):
    """MaxMin trains a pooled reward, then each EM step: its fit_stats counted `epochs` alone (half its pairs/s).
    Resumed with epochs raised, the pooled stage trains on, and the EM stages, whose checkpoints grew from the old
    pooled weights, train again rather than load those (the saved weights were the old fit's, bit for bit). The CLI
    no longer says "no checkpoint ... training from the start" of a MaxMin run it resumes."""
    from pluralign.cli import main
    from pluralign.io import write_jsonl
    from pluralign.methods import MaxMin

    train, _ = two_group_rows(n_users=4, pairs=20)
    first = MaxMin(n_groups=2, epochs=2, em_epochs=1, hidden=[]).fit(train, out_dir=str(tmp_path / "run"),
                                                                   progress=False)
    assert first.fit_stats_["epochs"] == first.trained_epochs_ > 2
    resumed = MaxMin(n_groups=2, epochs=3, em_epochs=1, hidden=[]).fit(train, out_dir=str(tmp_path / "run"),
                                                                     resume=True, progress=False)
    assert resumed.resumed_epochs_ == 2 and resumed.trained_epochs_ > 1  # the pooled epoch, then EM from scratch
    before, after = weights(first), weights(resumed)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    write_jsonl(tmp_path / "train.jsonl", train)
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        assert main(["fit", "maxmin", "--data", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "run"),
                     "--set", "n_groups=2", "--set", "epochs=3", "--set", "em_epochs=1", "--set", "hidden=[]",
                     "--resume"]) == 0
    assert not [m for m in caplog.messages if "no checkpoint" in m]


def test_vpl_says_it_does_not_validate(caplog):
    """VPL checked val_data and dropped it without a word (no val/loss, unlike every other method)."""
    from pluralign.methods import VPL

    train, test = two_group_rows(n_users=2, pairs=12)
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        VPL(epochs=1).fit(train, val_data=test, progress=False)
    assert [m for m in caplog.messages if m.startswith("vpl: val_data is checked but not validated on")]
