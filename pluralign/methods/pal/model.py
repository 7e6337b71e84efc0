"""PAL-A and PAL-B estimators (Chen et al. 2024, "PAL: Sample-Efficient Personalized Reward Modeling for
Pluralistic Alignment"): ``pluralign fit pal-a`` / ``pluralign fit pal-b``.

Training fits the projectors, prototypes (PAL-A) or prompt projectors (PAL-B), the logit scale and every
training user's simplex logits W_u jointly, on cached embeddings of a frozen backbone (the paper's "Tiny"
setting). Few-shot for a new user (paper §4.3): freeze everything and fit only that user's K simplex
logits on the k context pairs; the paper runs AdamW (lr 5e-3, 20 epochs), we run full-batch Adam from
the population's weights with a small Gaussian prior (:func:`fit_user_vector`): deterministic and fast.
``few_shot="posterior-mean"`` (ours) reads the user out as a Bayesian would instead: the posterior mean of w_u
under a Dirichlet prior fitted to the training users' weights, by importance sampling over seeded prior draws,
p(w | C) ∝ Dir(w; α) Π_{(c, r) ∈ C} σ(logit(c ≻ r | w)) (:func:`dirichlet_posterior_mean`).
``few_shot="training-users"`` (ours) takes the training users' own weights as the prior's points instead (an
empirical prior, as VPL's ``readout: training-users`` reads a user out on the training users' latents):
E[w | C] = Σ_i π_i w_i with π_i ∝ Π_{(c, r) ∈ C} σ(logit(c ≻ r | w_i)).

``finetune_layers`` > 0 is the paper's "Large" setting on a CPU budget (shared by every method, see
:mod:`pluralign.methods.base`): after that fit, the top ``finetune_layers`` transformer layers of the
backbone train jointly with the whole PAL network. Few-shot then embeds the k pairs once and fits w_u on
the head.

``metric_reg`` (ours, not the paper's; 0 = the paper's unregularized fit) adds a scale-free penalty that
keeps each linear layer of the item projector f near a scaled isometry (:func:`conformal_penalty`): the
preference metric starts from, and is shrunk toward, Euclidean distance in the embedding space. With a
linear f it is the regularizer that closes most of the seen-user gap on ``ideal-points``, where the
unregularized projector overfits the 16×16 metric (see models/pal.md).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch

from pluralign.data.contract import PreferenceSet
from pluralign.data.features import PairFeatures
from pluralign.methods.base import PreferenceModel, UserVector
from pluralign.methods.common import accuracy, preference_nll
from pluralign.methods.few_shot import fit_user_vector, point_query_predictions, posterior_mean
from pluralign.methods.network import PreferenceObjective
from pluralign.methods.pal.network import PalANetwork, PalBNetwork, PalNetwork, hinge_loss
from pluralign.training import TrainerOptions


class PalObjective(PreferenceObjective):
    """PAL's loss of the labelled pairs: the logistic form −log σ(logit) (the BT likelihood, the paper's
    cross-entropy for PAL-B) or the hinge form max(0, margin − logit); plus ``metric_reg`` times the
    projector's :meth:`~PalNetwork.metric_penalty` when that is positive.

    The hinge form holds the logit scale at ``init_scale``, as the reference trains it only for its logistic
    learners (``update_trainable_params``: "angle", "dist_logistic"): a trained scale meets the margin by
    growing (14.3 → 45 on random pairs) instead of by separating the pairs."""

    def __init__(self, network: PalNetwork, loss: str = "logistic", margin: float = 1.0,
                 metric_reg: float = 0.0) -> None:
        super().__init__(network)
        self.loss, self.margin, self.metric_reg = loss, margin, metric_reg

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        users = self.network.users_for(batch["user"])
        pair = (batch["prompt"], batch["chosen"], batch["rejected"], users)
        if self.loss == "hinge":  # the scale as a constant: no gradient, so AdamW leaves it (it stays an optimizer
            # parameter, as in checkpoints of before)
            logits = self.network.scale().detach() * self.network.closeness_gap(*pair)
            fit = hinge_loss(logits, self.margin)
        else:
            logits = self.network.logits(*pair)
            fit = preference_nll(logits)
        out = {"loss": fit, "accuracy": accuracy(logits)}
        if self.metric_reg > 0:
            penalty = self.network.metric_penalty()
            out.update(loss=fit + self.metric_reg * penalty, fit_loss=fit.detach(), metric_penalty=penalty.detach())
        return out


def dirichlet_moments(weights: torch.Tensor) -> torch.Tensor:
    """Dirichlet α from points on the simplex (rows) by the method of moments: α = m · s, m the mean point and
    s the precision. Under Dir(α) every component has v_k = m_k (1 − m_k) / (s + 1) (v_k its variance), so all
    components together give s + 1 = Σ_k m_k (1 − m_k) / Σ_k v_k. (The average over k of each component's own
    m_k (1 − m_k) / v_k − 1 is ruled by a component no user weighs: m_k, v_k ≈ 0 made s ≈ 1e4, a prior that
    held every new user at the mean point.) Fewer than two points, or points that do not vary: α = 1."""
    k = weights.shape[-1]
    if len(weights) < 2:
        return torch.ones(k, dtype=weights.dtype)
    m, v = weights.mean(0), weights.var(0)
    if bool((v <= 1e-12).all()):
        return torch.ones(k, dtype=weights.dtype)
    precision = ((m * (1 - m)).sum() / v.sum() - 1).clamp(1e-2, 1e4)
    return (m * precision).clamp_min(1e-3)


def dirichlet_draws(alpha: torch.Tensor, draws: int, seed: int = 0) -> torch.Tensor:
    """``draws`` points of Dir(α) [draws, K] from a seeded numpy generator: the same draws every call, whatever
    torch's global generator."""
    samples = torch.from_numpy(np.random.default_rng(seed).dirichlet(alpha.double().numpy(), size=draws))
    samples = samples.float().clamp_min(1e-12)
    return samples / samples.sum(-1, keepdim=True)


def dirichlet_posterior_mean(network: PalNetwork, features: PairFeatures | None, alpha: torch.Tensor, draws: int,
                             seed: int = 0) -> torch.Tensor:
    """E[w | C] under w ~ Dir(α) and the BT likelihood of the k pairs C: :func:`dirichlet_draws` weighted by that
    likelihood (self-normalized importance sampling; no pairs: the draws' mean)."""
    return posterior_mean(network, features, dirichlet_draws(alpha, draws, seed))


class _Pal(PreferenceModel):
    """Configuration, training and few-shot adaptation shared by PAL-A and PAL-B."""

    losses: tuple[str, ...] = ("logistic", "hinge")
    # the paper's fit of w_u; ours: the posterior mean under a Dirichlet prior (dirichlet_posterior_mean) or
    # under the training users' own weights as the prior (prior_points)
    few_shot_rules = ("map", "posterior-mean", "training-users")
    reweights_prior_points = True  # query_predictions: the same prior points for every context, reweighted

    def __init__(self, k: int = 3, pref_dim: int = 32, hidden: Sequence[int] = (), dropout: float = 0.0,
                 loss: str = "logistic", margin: float = 1.0, few_shot: str = "map", few_shot_steps: int = 60,
                 few_shot_lr: float = 0.2, few_shot_prior: float = 0.1, few_shot_draws: int = 4000,
                 user_gain: float = 10.0, metric_reg: float = 3.0, epochs: int = 60, **kwargs) -> None:
        super().__init__(epochs=epochs, **kwargs)
        self.k, self.pref_dim, self.hidden, self.dropout = k, pref_dim, list(hidden), dropout
        self.loss, self.margin, self.user_gain, self.metric_reg = loss, margin, user_gain, metric_reg
        self.few_shot, self.few_shot_draws = few_shot, few_shot_draws
        self.few_shot_steps, self.few_shot_lr, self.few_shot_prior = few_shot_steps, few_shot_lr, few_shot_prior
        self.require(few_shot in self.few_shot_rules, "few_shot", f"must be one of {self.few_shot_rules}")
        self.require(few_shot_draws >= 1, "few_shot_draws", "must be at least 1")
        self.require(k >= 1, "k", "must be at least 1 (k = 1 is a single ideal point: BT-like)")
        self.require(pref_dim >= 1, "pref_dim", "must be at least 1")
        self.require(all(int(h) >= 1 for h in self.hidden), "hidden", "must be positive layer widths")
        self.require(0.0 <= dropout < 1.0, "dropout", "must lie in [0, 1)")
        self.require(loss in self.losses, "loss", f"must be one of {self.losses}")
        self.require(margin > 0, "margin", "must be positive")
        self.require(few_shot_steps >= 1, "few_shot_steps", "must be at least 1")
        self.require(few_shot_lr > 0, "few_shot_lr", "must be positive")
        self.require(few_shot_prior >= 0, "few_shot_prior", "must be non-negative")
        self.require(user_gain > 0, "user_gain", "must be positive")
        self.require(metric_reg >= 0, "metric_reg", "must be non-negative")

    def objective(self, features: PairFeatures) -> torch.nn.Module:
        return PalObjective(self.head_network, self.loss, self.margin, self.metric_reg)

    def check_training_users(self, data: PreferenceSet) -> None:
        super().check_training_users(data)
        if self.k > (n_users := len(data.user_ids)):  # not an error: the fit runs, the extra prototypes are waste
            logging.getLogger("pluralign").warning(
                "%s: k=%d prototypes for %d training user(s): more prototypes than users are not identified (many "
                "sets of them give the same users); k=%d already gives each user one of their own", self.name, self.k,
                n_users, max(n_users, 1))

    def adapt(self, features: PairFeatures) -> UserVector:
        self.check_fitted().eval()
        network, features = self.head_inputs(features)  # w_u only touches the head: embed the k pairs once
        if self.few_shot != "map":
            with torch.no_grad():
                mean = posterior_mean(network, features, self.prior_points(network))
                extra = ({"dirichlet_alpha": dirichlet_moments(network.weights.all()).tolist()}
                         if self.few_shot == "posterior-mean" else {})
            return UserVector(mean, method=self.name, extra=extra)
        init = network.population_user().detach().clamp_min(1e-6).log()
        free = fit_user_vector(network, features, lambda u: torch.softmax(u, -1), init,
                               steps=self.few_shot_steps, lr=self.few_shot_lr, prior_weight=self.few_shot_prior)
        return UserVector(torch.softmax(free, -1), method=self.name, extra={"logits": free.tolist()})

    @torch.no_grad()
    def query_predictions(self, pool: PairFeatures, context: PairFeatures | None):
        """The Bayesian posterior over w given the context: the prior points of :meth:`prior_points` weighted by
        their likelihood (Dirichlet draws unless ``few_shot="training-users"``), and their P(a ≻ b) on the pool."""
        self.check_fitted().eval()
        network, pool = self.head_inputs(pool)
        context = self.head_inputs(context)[1] if context is not None else None
        return point_query_predictions(network, pool, context, self.prior_points(network))

    def prior_points(self, network: PalNetwork) -> torch.Tensor:
        """Points w on the simplex that stand for the prior [S, K]: the training users' own weights for
        ``few_shot="training-users"`` (an empirical prior, which keeps users that come in types at their types),
        else ``few_shot_draws`` seeded draws of the Dirichlet fitted to them (:func:`dirichlet_draws`)."""
        trained = network.weights.all().detach()  # points, not parameters: callable outside no_grad
        if self.few_shot == "training-users" and len(trained):
            return trained
        return dirichlet_draws(dirichlet_moments(trained), self.few_shot_draws, self.seed)


class PalA(_Pal):
    """``pluralign fit pal-a``: K prototypes, ideal point f(P w_u), preference by distance."""

    name = "pal-a"

    # a run saved before ``distance`` existed was fitted with the squared distance (pluralign.methods.base)
    saved_before = {"distance": "squared"}

    def __init__(self, init_scale: float = 1.0, distance: str = "euclidean", lr: float = 0.03, **kwargs) -> None:
        super().__init__(lr=lr, **kwargs)
        self.init_scale, self.distance = init_scale, distance
        self.require(init_scale > 0, "init_scale", "must be positive")
        self.require(distance in PalANetwork.distances, "distance", f"must be one of {PalANetwork.distances}")

    def build_network(self, prompt_dim: int, response_dim: int, n_users: int) -> PalANetwork:
        return PalANetwork(prompt_dim, response_dim, n_users, self.k, self.pref_dim, self.hidden, self.dropout,
                           self.init_scale, self.user_gain, self.distance)

    def fit_features(self, features: PairFeatures, val_features: PairFeatures | None, options: TrainerOptions) -> None:
        items = torch.cat([torch.cat([features.prompt, features.chosen], -1),
                           torch.cat([features.prompt, features.rejected], -1)])
        self.network_.init_prototypes(items)
        super().fit_features(features, val_features, options)


class PalB(_Pal):
    """``pluralign fit pal-b``: K prompt projectors mixed by w_u, preference by scaled cosine."""

    name = "pal-b"

    def __init__(self, init_scale: float = 1 / 0.07, lr: float = 0.01, **kwargs) -> None:
        super().__init__(lr=lr, **kwargs)
        self.init_scale = init_scale
        self.require(0 < init_scale <= 100, "init_scale", "must lie in (0, 100] (the paper clamps the scale at 100)")

    def build_network(self, prompt_dim: int, response_dim: int, n_users: int) -> PalBNetwork:
        return PalBNetwork(prompt_dim, response_dim, n_users, self.k, self.pref_dim, self.hidden, self.dropout,
                           self.init_scale, self.user_gain)
