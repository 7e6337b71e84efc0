"""The Trainer factory's side effects: a quiet fit silences Lightning only while it runs."""

import logging

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
