"""TunedNetwork and TunedObjective with a stand-in backbone (no download): columns of different widths are padded
with PAD (not token id 0, BERT's real [PAD] token, which the backbone would count as a token), and the objective's
epoch hook receives the epoch unchanged."""

from __future__ import annotations

import torch
from torch import nn

from pluralign.backbones.tuned import PAD
from pluralign.methods.network import PreferenceNetwork
from pluralign.methods.tuned import TunedNetwork, TunedObjective


class CountingBackbone(nn.Module):
    """A text's vector: [its number of non-PAD ids, its number of id-0 tokens]; it remembers what it read."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[torch.Tensor] = []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.read.append(ids)
        return torch.stack([(ids != PAD).sum(1), (ids == 0).sum(1)], 1).float()


class Head(PreferenceNetwork):
    user_dim = 0


def test_columns_of_other_widths_are_padded_with_pad() -> None:
    backbone = CountingBackbone()
    network = TunedNetwork(backbone, Head())
    prompt = torch.tensor([[5, PAD]])  # width 2
    chosen = torch.tensor([[7, 8, 9], [0, 3, PAD]])  # width 3; the second holds a real id 0
    rejected = torch.tensor([[4]])  # width 1
    p, c, r = network.embed(prompt, chosen, rejected)
    assert torch.equal(backbone.read[0], torch.tensor([[5, PAD, PAD], [7, 8, 9], [0, 3, PAD], [4, PAD, PAD]]))
    assert torch.equal(p, torch.tensor([[1.0, 0.0]]))
    assert torch.equal(c, torch.tensor([[3.0, 0.0], [2.0, 1.0]]))
    assert torch.equal(r, torch.tensor([[1.0, 0.0]]))


class Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[tuple[int, int]] = []
        self.batches: list[dict] = []

    def forward(self, batch):
        self.batches.append(batch)
        return {"loss": batch["chosen"].sum() - batch["rejected"].sum()}

    def on_epoch_start(self, epoch: int, max_epochs: int) -> None:
        self.epochs.append((epoch, max_epochs))


def test_the_objective_gets_the_embedded_batch_and_the_epoch_unchanged() -> None:
    objective = Recorder()
    tuned = TunedObjective(TunedNetwork(CountingBackbone(), Head()), objective)
    for epoch in range(3):
        tuned.on_epoch_start(epoch, 3)
    assert objective.epochs == [(0, 3), (1, 3), (2, 3)]  # VPL's KL annealing reads these
    batch = {"prompt": torch.tensor([[1]]), "chosen": torch.tensor([[1, 2, 3]]), "rejected": torch.tensor([[4, PAD, PAD]]),
             "user": torch.tensor([7])}
    out = tuned(batch)
    seen = objective.batches[0]
    assert torch.equal(seen["chosen"], torch.tensor([[3.0, 0.0]])) and torch.equal(seen["rejected"], torch.tensor([[1.0, 0.0]]))
    assert torch.equal(seen["user"], torch.tensor([7])) and out["loss"].item() == 2.0
    TunedObjective(TunedNetwork(CountingBackbone(), Head()), nn.Identity()).on_epoch_start(0, 1)  # no hook: nothing
