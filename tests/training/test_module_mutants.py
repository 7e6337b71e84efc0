"""The shared LightningModule step by hand: what each stage logs under which name and with which options, the
loss it returns (with its graph), the epoch hook and counter, and the optimizer's defaults."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from pluralign.training import ObjectiveModule


class Doubler(torch.nn.Module):
    """loss = w · Σ x with w = 2, and a constant accuracy of 0.5; it records the epoch hook's arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(2.0))
        self.hook_calls: list[tuple[int, int]] = []

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": self.w * batch["x"].sum(), "accuracy": torch.tensor(0.5), "kl": torch.tensor(0.25)}

    def on_epoch_start(self, epoch: int, max_epochs: int) -> None:
        self.hook_calls.append((epoch, max_epochs))


def recording(module: ObjectiveModule) -> list[tuple[str, float, dict]]:
    logged: list[tuple[str, float, dict]] = []
    def log(name: str, value: torch.Tensor, **options: object) -> None:
        logged.append((name, float(value), options))

    module.log = log  # type: ignore[method-assign]
    return logged


@pytest.mark.parametrize("step, stage", [("training_step", "train"), ("validation_step", "val"),
                                         ("test_step", "test")])
def test_each_stage_logs_every_output_under_its_own_prefix(step: str, stage: str) -> None:
    """A batch of 3 rows, x = (1, 1, 1): loss = 2 · 3 = 6. Every key is logged as STAGE/KEY, per step in training
    only (and synced across processes only per epoch), with the batch's 3 rows as its size; loss and accuracy
    on the progress bar, kl not."""
    module = ObjectiveModule(Doubler())
    logged = recording(module)
    loss = getattr(module, step)({"x": torch.ones(3), "y": torch.zeros(3)}, 0)
    assert loss.item() == 6.0
    assert [(name, value) for name, value, _ in logged] == [(f"{stage}/loss", 6.0), (f"{stage}/accuracy", 0.5),
                                                            (f"{stage}/kl", 0.25)]
    training = stage == "train"
    for name, _, options in logged:
        assert options["on_step"] is training and options["on_epoch"] is True
        assert options["sync_dist"] is (not training) and options["batch_size"] == 3
        assert options["prog_bar"] is (not name.endswith("/kl"))


def test_the_training_step_returns_the_loss_with_its_graph() -> None:
    """d loss / d w = Σ x = 1 + 2 = 3: the returned loss is the objective's, not a detached copy."""
    objective = Doubler()
    module = ObjectiveModule(objective)
    recording(module)
    loss = module.training_step({"x": torch.tensor([1.0, 2.0])}, 0)
    assert loss.item() == 6.0 and loss.requires_grad
    loss.backward()
    assert objective.w.grad.item() == 3.0


def test_the_epoch_hook_gets_the_current_epoch_and_the_epochs_and_the_counter_counts() -> None:
    """At epoch 2 of 5 the objective's hook is called with (2, 5); each finished epoch adds one."""
    objective = Doubler()
    module = ObjectiveModule(objective)
    module.trainer = SimpleNamespace(current_epoch=2, max_epochs=5)  # type: ignore[assignment]
    module.on_train_epoch_start()
    assert objective.hook_calls == [(2, 5)]
    assert module.epochs_trained == 0
    module.on_train_epoch_end()
    module.on_train_epoch_end()
    assert module.epochs_trained == 2


def test_the_optimizer_defaults() -> None:
    """lr 1e-3, no weight decay, unless given."""
    group = ObjectiveModule(Doubler()).configure_optimizers().param_groups[0]
    assert group["lr"] == 1e-3 and group["weight_decay"] == 0.0
