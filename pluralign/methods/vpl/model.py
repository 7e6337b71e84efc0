"""VPL as a Pyro model and guide (Poddar et al. 2024, eq. 3), in the style of ``pyro.contrib.cevae``.

Generative model, per user u with labelled pairs (x, y^c, y^r):
    z_u ~ N(0, I_L),    label_i ~ Bernoulli(σ(r(x_i, y_i^c, z_u) − r(x_i, y_i^r, z_u)))   (all labels are 1)
Guide: z_u ~ q(z | C_u) = N(μ(C_u), diag σ²(C_u)) from a *context* set C_u of the user's other pairs.
With ``context_per_pair`` (an option, as WEIRDLabUW/vpl_llm) every query pair i gets its own context C_i
and its own z_i, so the "users" plate runs over query pairs and there is one KL term per query pair.
ELBO per query pair = [Σ_i log p(label_i | z) − β_t Σ_u KL(q(z_u | C_u) ‖ p(z))] / N_queries (u over the batch's
users: the KL's weight per pair thus falls with the batch size, models/vpl.md), estimated by
``Trace_ELBO`` (one reparameterized sample); β_t follows a cyclical cosine schedule (the reference's
Annealer: shape "cosine", baseline 0.1, cyclical, which ramps over the whole cycle; ours over ``kl_ramp`` of it,
half by default, then holds β) so the encoder is used before the KL term bites.
β enters as ``poutine.scale`` on the z site of both model and guide, which scales log p(z) − log q(z).
"""

from __future__ import annotations

import math
from typing import Callable

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.nn import PyroModule

from pluralign.data.features import PairFeatures
from pluralign.methods.common import accuracy
from pluralign.methods.vpl.network import VPLNetwork


def kl_weight_at(epoch: int, weight: float, cycle: int, ramp: float = 0.5, baseline: float = 0.1) -> float:
    """β at ``epoch``: in each cycle of ``cycle`` epochs, rise from baseline·weight to weight along half a
    cosine over the first ``ramp`` fraction of the cycle, then hold (Fu et al. 2019; ramp = 1 is VPL's).
    β is set per epoch, so a cycle of one epoch has no room to ramp: ``cycle=1`` is a constant β = weight."""
    if cycle == 1:
        return weight
    position = (epoch % cycle) / max(ramp * cycle, 1e-9)
    shape = (1 - math.cos(math.pi * min(position, 1.0))) / 2
    return weight * (baseline + (1 - baseline) * shape)


class VPLModel(PyroModule):
    """p(z) p(labels | x, z): the prior and the BT decoder."""

    def __init__(self, network: VPLNetwork) -> None:
        super().__init__()
        self.network = network

    def z_dist(self, n_users: int, device: torch.device) -> dist.Distribution:
        loc = torch.zeros(n_users, self.network.user_dim, device=device)
        return dist.Normal(loc, torch.ones_like(loc)).to_event(1)

    def label_dist(self, queries: PairFeatures, z: torch.Tensor) -> dist.Distribution:
        return dist.Bernoulli(logits=self.network.logits(queries.prompt, queries.chosen, queries.rejected, z))

    def forward(self, context: dict, queries: PairFeatures, owner: torch.Tensor,
                beta: float | torch.Tensor) -> None:
        n_users = context["mask"].shape[0]
        with pyro.plate("users", n_users), poutine.scale(scale=beta):
            z = pyro.sample("z", self.z_dist(n_users, owner.device))
        with pyro.plate("pairs", len(queries)):
            pyro.sample("label", self.label_dist(queries, z[owner]), obs=torch.ones(len(queries), device=owner.device))


class VPLGuide(PyroModule):
    """q(z | context pairs): the amortized encoder."""

    def __init__(self, network: VPLNetwork) -> None:
        super().__init__()
        self.network = network

    def z_dist(self, context: dict) -> dist.Distribution:
        mean, log_var = self.network.encode(context["prompt"], context["chosen"], context["rejected"], context["mask"])
        self.last_mean = mean.detach()  # the step's posterior means, for ELBOObjective's accuracy (no second pass)
        return dist.Normal(mean, (0.5 * log_var).exp()).to_event(1)

    def forward(self, context: dict, queries: PairFeatures, owner: torch.Tensor,
                beta: float | torch.Tensor) -> None:
        with pyro.plate("users", context["mask"].shape[0]), poutine.scale(scale=beta):
            pyro.sample("z", self.z_dist(context))


class ContextSampler:
    """Context sets of a user's *other* pairs for the query pairs of a batch.

    Two granularities: ``__call__`` draws one set per user of the batch (all of that user's query pairs
    share it; the batch's own rows are left out), ``per_pair`` one set per query pair (the pair itself is
    left out), as WEIRDLabUW/vpl_llm does: each of its training examples carries its own context. The set
    size is drawn per set in [min_size, max_size] so the encoder learns every k it will see at few-shot time
    (the reference trains with a fixed size). A query's own label is never in its context: a user with every
    pair in the batch gets a set per query pair (``__call__`` returns their rows), and a user's only pair an
    empty set, the prior. Reading the label it is scored on, the encoder would learn to copy it into z, which
    no few-shot context allows.
    """

    def __init__(self, features: PairFeatures, min_size: int, max_size: int) -> None:
        self.features, self.min_size, self.max_size = features, min_size, max_size
        order = torch.argsort(features.user, stable=True)
        users, counts = torch.unique_consecutive(features.user[order], return_counts=True)
        self.pairs_of = dict(zip(users.tolist(), order.split(counts.tolist())))
        # padded pools for the vectorized per-pair draw: pool[slot] holds a user's pair indices, count[slot]
        # how many; slot_of / position_of locate a user and a row inside them
        self.slot_of = torch.full((int(features.user.max()) + 1 if len(features) else 0,), -1, dtype=torch.long)
        self.slot_of[users] = torch.arange(len(users))
        self.count = counts
        self.pool = torch.zeros(len(users), int(counts.max()) if len(counts) else 0, dtype=torch.long)
        self.position_of = torch.zeros(len(features), dtype=torch.long)
        for slot, members in enumerate(order.split(counts.tolist())):
            self.pool[slot, : len(members)] = members
            self.position_of[members] = torch.arange(len(members))

    def __call__(self, users: torch.Tensor, exclude: torch.Tensor | None = None) -> tuple[dict, torch.Tensor]:
        """One set per user drawn from their pairs outside ``exclude`` (the batch's rows), and the users left
        without one (every pair in the batch: a bool per user), whose rows need ``per_pair`` sets."""
        chosen_sets, inside = [], []
        # one mask of the batch's rows for all users (a torch.isin per user cost 60 µs each: 5% of a VPL fit)
        excluded = None
        if exclude is not None:
            excluded = torch.zeros(len(self.features), dtype=torch.bool)
            excluded[exclude] = True
        for user in users.tolist():
            pool = self.pairs_of[user]
            if excluded is not None:
                pool = pool[~excluded[pool]]
            inside.append(len(pool) == 0)
            size = int(torch.randint(self.min_size, self.max_size + 1, ()))
            chosen_sets.append(pool[torch.randperm(len(pool))[:size]])
        return pad_contexts(self.features, chosen_sets), torch.tensor(inside, dtype=torch.bool)

    def per_pair(self, rows: torch.Tensor) -> dict:
        """One random context per query row: up to a drawn size of the row's user's other pairs."""
        slots = self.slot_of[self.features.user[rows]]
        count = self.count[slots]  # [N]
        width = self.pool.shape[1]
        keys = torch.rand(len(rows), width)
        positions = torch.arange(width)
        invalid = positions.unsqueeze(0) >= count.unsqueeze(1)
        invalid |= positions.unsqueeze(0) == self.position_of[rows].unsqueeze(1)  # never the row itself
        keys = keys.masked_fill(invalid, float("inf"))
        take = min(self.max_size, width)
        picked = keys.topk(take, dim=1, largest=False).indices  # random order of the valid positions
        size = torch.randint(self.min_size, self.max_size + 1, (len(rows),))
        size = torch.minimum(size, count - 1)  # a user's only pair: an empty set, the prior
        mask = torch.arange(take).unsqueeze(0) < size.unsqueeze(1)
        index = self.pool[slots.unsqueeze(1), picked] * mask
        return {"prompt": self.features.prompt[index], "chosen": self.features.chosen[index],
                "rejected": self.features.rejected[index], "mask": mask}


def pad_contexts(features: PairFeatures, sets: list[torch.Tensor]) -> dict:
    """Index sets into one padded batch: prompt/chosen/rejected [U, C, ·] and the mask [U, C]."""
    width = max(len(s) for s in sets)
    index = torch.zeros(len(sets), width, dtype=torch.long)
    mask = torch.zeros(len(sets), width, dtype=torch.bool)
    for row, s in enumerate(sets):
        index[row, : len(s)], mask[row, : len(s)] = s, True
    return {"prompt": features.prompt[index], "chosen": features.chosen[index],
            "rejected": features.rejected[index], "mask": mask}


ENCODE_PAIRS = 1024  # the most pairs one encoder pass attends over (its scores cost pairs² per user)
# floats of one padded batch: its attention scores (sets × pairs²) or its gathered inputs (sets × pairs × the
# prompt's and both responses' widths), whichever is larger: 64 MB of float32
ENCODE_CELLS = 2**24


@torch.no_grad()
def encode_sets(network: VPLNetwork, features: PairFeatures, sets: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """q(z | C) of each non-empty index set of ``features`` (the head's input vectors): mean and log-variance [S, L].

    Self-attention over C pairs costs C² per set, so one padded batch of every training user at once ran out of
    memory on data with few users of many pairs (UltraFeedback-P, PersonalLLM). Sets are batched so that a batch's
    scores stay under ENCODE_CELLS; a set of more than ENCODE_PAIRS pairs (the encoder trained on context_max) is
    read in near-equal chunks, and their means and log-variances are averaged: the chunks are exchangeable
    samples of one user's context. Sets of at most ENCODE_PAIRS pairs give what one pass over them gives; an empty
    set gives the prior (0, 0), as the encoder reads an empty context."""
    pieces = [(u, chunk) for u, s in enumerate(sets)
              for chunk in torch.tensor_split(s, max(1, math.ceil(len(s) / ENCODE_PAIRS)))]
    row_width = features.prompt.shape[-1] + features.chosen.shape[-1] + features.rejected.shape[-1]
    batches, batch, widest = [], [], 0
    for _, chunk in pieces:
        width = max(widest, len(chunk), 1)
        if batch and (len(batch) + 1) * width * max(width, row_width) > ENCODE_CELLS:
            batches.append(batch)
            batch, widest = [], 0
        batch.append(chunk)
        widest = max(widest, len(chunk))
    batches.append(batch)
    means, log_vars = [], []
    for batch in batches:
        context = pad_contexts(features, batch)
        mean, log_var = network.encode(context["prompt"], context["chosen"], context["rejected"], context["mask"])
        means.append(mean), log_vars.append(log_var)
    mean, log_var = torch.cat(means), torch.cat(log_vars)
    owner = torch.tensor([u for u, _ in pieces], device=mean.device)
    counts = torch.bincount(owner, minlength=len(sets)).unsqueeze(-1)
    total = mean.new_zeros(len(sets), mean.shape[-1])
    return total.index_add(0, owner, mean) / counts, total.index_add(0, owner, log_var) / counts


def stack_contexts(first: dict, second: dict) -> dict:
    """Two padded context batches as one: [U1 + U2, max(C1, C2), ·], the narrower one padded (mask False)."""
    width = max(first["mask"].shape[1], second["mask"].shape[1])

    def widened(tensor: torch.Tensor) -> torch.Tensor:
        padding = [0, 0] * (tensor.dim() - 2) + [0, width - tensor.shape[1]]
        return torch.nn.functional.pad(tensor, padding)

    return {key: torch.cat([widened(first[key]), widened(second[key])]) for key in first}


class ELBOObjective(torch.nn.Module):
    """The loss the generic LightningModule minimizes: −ELBO per query pair, with β annealed per epoch."""

    def __init__(self, network: VPLNetwork, features: PairFeatures, kl_weight: float, kl_cycle: int,
                 kl_ramp: float, kl_baseline: float, context_min: int, context_max: int,
                 context_per_pair: bool = False, embed_sets: Callable | None = None) -> None:
        super().__init__()
        self.network = network
        self.embed_sets = embed_sets  # token-id features (a tuned backbone): how to embed a padded context
        # module-local parameters: nothing goes to Pyro's global param store, all lives in this nn.Module
        with pyro.settings.context(module_local_params=True):
            self.model, self.guide = VPLModel(network), VPLGuide(network)
        self.sampler = ContextSampler(features, context_min, context_max)
        self.context_per_pair = context_per_pair
        self.schedule = dict(weight=kl_weight, cycle=kl_cycle, ramp=kl_ramp, baseline=kl_baseline)
        self.beta = kl_weight_at(0, **self.schedule)
        self.elbo = pyro.infer.Trace_ELBO()

    def on_epoch_start(self, epoch: int, max_epochs: int) -> None:
        self.beta = kl_weight_at(epoch, **self.schedule)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        queries = PairFeatures(batch["prompt"], batch["chosen"], batch["rejected"], batch["user"])
        rows, kl_scale = batch.get("row"), None
        if self.context_per_pair and rows is not None:  # one z per query pair, from its own context
            owner = torch.arange(len(queries), device=queries.user.device)
            context = self.sampler.per_pair(rows.cpu())
        else:  # one z per user of the batch, shared by that user's query pairs
            users, owner = torch.unique(queries.user, return_inverse=True)
            context, inside = self.sampler(users.cpu(), None if rows is None else rows.cpu())
            if bool(inside.any()):  # users with every pair in the batch: a set per query row, never the row
                alone = inside.to(owner.device)[owner]
                context = stack_contexts(context, self.sampler.per_pair(rows[alone].cpu()))
                # each of those rows' KL weighs 1 / (the user's rows): a user's KL counts once, as a shared z's does
                shares = torch.bincount(owner[alone], minlength=len(users)).float()[owner[alone]]
                kl_scale = torch.cat([torch.ones(len(users), device=owner.device), 1.0 / shares])
                owner = owner.clone()
                owner[alone] = len(users) + torch.arange(int(alone.sum()), device=owner.device)
        context = {k: v.to(owner.device) for k, v in context.items()}
        if self.embed_sets is not None:  # the backbone trains through the context pairs too
            mask = context["mask"]
            prompt, chosen, rejected = self.embed_sets(mask, context["prompt"], context["chosen"], context["rejected"])
            context = {"prompt": prompt, "chosen": chosen, "rejected": rejected, "mask": mask}
        beta = max(self.beta, 1e-12)  # poutine.scale needs a positive factor; β = 0 is "no KL"
        beta = beta * kl_scale if kl_scale is not None else beta
        with pyro.settings.context(module_local_params=True):
            loss = self.elbo.differentiable_loss(self.model, self.guide, context, queries, owner, beta) / len(queries)
        with torch.no_grad():  # the means the guide computed in this step's ELBO: the same encoder on the same sets
            mean = self.guide.last_mean
            logits = self.network.logits(queries.prompt, queries.chosen, queries.rejected, mean[owner])
        return {"loss": loss, "accuracy": accuracy(logits), "beta": torch.tensor(self.beta)}
