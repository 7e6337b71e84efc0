"""The VPL estimator (Poddar et al. 2024): ``pluralign fit vpl``.

Trains the Pyro model/guide of ``model.py`` with ``Trace_ELBO`` inside the generic LightningModule; each
batch of query pairs gets, per user, a context set of that user's *other* pairs, shared by that user's query
pairs (``context_per_pair: true``: one set per query pair, the reference's layout; see models/vpl.md).
After training every known user's vector is the posterior mean μ(C_u) over their training pairs (a buffer:
it saves). Few-shot is amortized: ``infer_user`` is one encoder pass, no gradient step, and returns mean and variance.
Predictions plug in one vector per user, never a sample: by default the posterior mean (the paper's eval rule);
with ``readout="training-users"`` (ours) the training users' latents weighted by the posterior density q(z_u | C),
a point among the latents the decoder was trained on (see :func:`training_user_readout`).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch

from pluralign.data.contract import DataError, PreferenceSet, ignored_columns_note
from pluralign.data.features import PairFeatures
from pluralign.data.readers import read_preferences
from pluralign.methods.base import PreferenceModel, UserVector
from pluralign.methods.common import logits_per_user
from pluralign.methods.vpl.active import posterior_samples
from pluralign.methods.vpl.model import ELBOObjective, encode_sets
from pluralign.methods.vpl.network import VPLNetwork
from pluralign.training import TrainerOptions

ACTIVE_KL_NATS = 0.01  # a latent unit is "active" above this KL (or this variance of its posterior mean)
SPREAD_PAIRS = 512  # pairs on which the decoder's use of z is measured (evenly spaced over the data)
IGNORED_SPREAD = 0.01  # the decoder "ignores z" where users' P(a ≻ b) differ by less than this (sd)


def training_user_readout(user_means: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_u w_u z_u with w_u ∝ q(z_u | C) = N(z_u; μ(C), σ²(C)): the new user's posterior, read out on the known
    users' latents z_u, and its variance per unit, Σ_u w_u (z_u − Σ_v w_v z_v)², so the pair is the mean and
    variance of one distribution (σ²(C) belongs to μ(C)). Why: from a few pairs μ(C) can land between two clusters
    of training latents, on the wrong side of the decoder's boundary though nearer the user's own cluster
    (models/vpl.md, "Reading the posterior out on the training users")."""
    log_density = -0.5 * ((user_means - mean).pow(2) / log_var.exp() + log_var).sum(-1)
    weights = torch.softmax(log_density, dim=0)
    point = weights @ user_means
    return point, weights @ (user_means - point).pow(2)


def kl_to_prior(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per dimension: ½(μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var)


class VPL(PreferenceModel):
    """``pluralign fit vpl``: variational preference learning with an amortized user encoder."""

    name = "vpl"
    decoders = ("concat", "basis")  # the paper's MLP([x, y, z]); ours, linear in z (see network.py)
    readouts = ("mean", "training-users")  # the paper's posterior mean; ours, see training_user_readout
    # a run saved before ``readout`` existed read out the posterior mean (pluralign.methods.base)
    saved_before = {"readout": "mean"}

    def __init__(self, latent_dim: int = 8, hidden: Sequence[int] = (64, 64), encoder_hidden: Sequence[int] = (64,),
                 encoder_width: int = 64, kl_weight: float = 0.01, kl_cycle: int = 10, kl_ramp: float = 0.5,
                 kl_baseline: float = 0.1, context_min: int = 1, context_max: int = 16, context_per_pair: bool = False,
                 normalize_z: bool = False, decoder: str = "concat", readout: str = "training-users",
                 active_samples: int = 64, lr: float = 3e-3, **kwargs) -> None:
        super().__init__(lr=lr, **kwargs)
        self.latent_dim, self.hidden, self.encoder_hidden = latent_dim, list(hidden), list(encoder_hidden)
        self.encoder_width, self.normalize_z, self.active_samples = encoder_width, normalize_z, active_samples
        self.decoder, self.readout = decoder, readout
        self.kl_weight, self.kl_cycle, self.kl_ramp, self.kl_baseline = kl_weight, kl_cycle, kl_ramp, kl_baseline
        self.context_min, self.context_max, self.context_per_pair = context_min, context_max, context_per_pair
        self.require(latent_dim >= 1, "latent_dim", "must be at least 1")
        self.require(all(int(h) >= 1 for h in self.hidden), "hidden", "must be positive layer widths")
        self.require(all(int(h) >= 1 for h in self.encoder_hidden), "encoder_hidden", "must be positive layer widths")
        self.require(encoder_width >= 1, "encoder_width", "must be at least 1")
        self.require(kl_weight >= 0, "kl_weight", "must be non-negative")
        self.require(kl_cycle >= 1, "kl_cycle", "must be at least 1 epoch")
        self.require(0 < kl_ramp <= 1, "kl_ramp", "must lie in (0, 1]")
        self.require(0 <= kl_baseline <= 1, "kl_baseline", "must lie in [0, 1]")
        self.require(context_min >= 1, "context_min", "must be at least 1")
        self.require(context_max >= context_min, "context_max", "must be at least context_min")
        self.require(active_samples >= 2, "active_samples", "must be at least 2")
        self.require(decoder in self.decoders, "decoder", f"must be one of {self.decoders}")
        self.require(readout in self.readouts, "readout", f"must be one of {self.readouts}")

    def build_network(self, prompt_dim: int, response_dim: int, n_users: int) -> VPLNetwork:
        return VPLNetwork(prompt_dim, response_dim, n_users, self.latent_dim, self.hidden, self.encoder_hidden,
                          self.encoder_width, self.normalize_z, self.decoder)

    def objective(self, features: PairFeatures) -> ELBOObjective:
        return ELBOObjective(self.head_network, features, self.kl_weight, self.kl_cycle, self.kl_ramp,
                             self.kl_baseline, self.context_min, self.context_max, self.context_per_pair,
                             embed_sets=None if self.tuned is None else self.tuned.embed_sets)

    def check_training_users(self, data: PreferenceSet) -> None:
        if not data.user_ids:
            raise DataError(f"vpl: {data.source or 'the training rows'}: no row has a user_id"
                            f"{ignored_columns_note(data)}; VPL learns a user from their own pairs (bt and micro "
                            "train on pooled pairs)")

    def training_pairs(self, features: PairFeatures) -> PairFeatures:
        known = features.user >= 0
        if bool(known.all()):
            return features
        # VPL needs a user for every pair: their context comes from the same user
        logging.getLogger("pluralign").warning("vpl: %d pairs without a user_id left out of training",
                                               int((~known).sum()))
        return features[known]

    def fit_features(self, features: PairFeatures, val_features: PairFeatures | None, options: TrainerOptions) -> None:
        if val_features is not None:  # checked like every method's, but the ELBO is not one to score held-out rows by
            logging.getLogger("pluralign").warning(
                "vpl: val_data is checked but not validated on: the ELBO draws each user's context from the training "
                "batch, so no val/loss is logged (evaluate the saved run instead)")
        self.run_lightning(self.objective(features), features, None, options, self.epochs)
        self.network_.cpu().eval()
        self._summarize_users(features)

    def finetune(self, options: TrainerOptions) -> PairFeatures:
        tokens = super().finetune(options)
        self._summarize_users(tokens)  # the encoder moved with the backbone: the users' means move too
        return tokens

    def _summarize_users(self, features: PairFeatures) -> None:
        """Known users' posterior means (from all their pairs), the population and the collapse check."""
        network, features = self.head_inputs(features)
        posteriors = self._posteriors(features)
        network.user_means.copy_(posteriors[0])
        # population (k = 0): the mean of the users' posterior means, the centre of the latents the decoder
        # was trained on (the prior mean 0 is off that support when normalize_z puts z on a sphere)
        means = posteriors[0]
        network.population.copy_(means.mean(0) if len(means) else torch.zeros(self.latent_dim))
        self._collapse = self._diagnose(features, posteriors)

    def fit(self, data: Any, *args, **kwargs) -> "VPL":
        super().fit(data, *args, **kwargs)
        self.fit_stats_["collapse"] = collapse = self._collapse
        if collapse["collapsed"] or collapse["decoder_ignores_z"]:  # a user's pairs would change nothing
            state = "collapsed" if collapse["collapsed"] else "is ignored by the decoder"
            logging.getLogger("pluralign").warning(
                "vpl: the latent %s: %d of %d units active, KL %.2f nats, users' P(a ≻ b) differ by %.3f (sd); "
                "few-shot users will get about the population's predictions (if the users do differ, more pairs "
                "per user, more epochs or a smaller kl_weight may help)", state, collapse["active_units_kl"],
                collapse["latent_dim"], collapse["kl_total"], collapse["decoder_spread"])
        return self

    # ---- users ------------------------------------------------------------------------------
    @torch.no_grad()
    def _posteriors(self, features: PairFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of every user index 0..max from all of their pairs (features:
        the head's input vectors)."""
        n = int(features.user.max()) + 1 if len(features) else 0
        sets = [torch.nonzero(features.user == u).flatten() for u in range(n)]
        if n == 0:
            return torch.zeros(0, self.latent_dim), torch.zeros(0, self.latent_dim)
        missing = [len(s) == 0 for s in sets]
        mean, log_var = encode_sets(self.head_network, features,
                                    [s if len(s) else torch.zeros(1, dtype=torch.long) for s in sets])
        gone = torch.tensor(missing)
        return mean.masked_fill(gone.unsqueeze(-1), 0.0), log_var.masked_fill(gone.unsqueeze(-1), 0.0)

    def adapt(self, features: PairFeatures) -> UserVector:
        self.check_fitted().eval()
        network, features = self.head_inputs(features)
        with torch.no_grad():
            mean, log_var = (v[0] for v in encode_sets(network, features, [torch.arange(len(features))]))
            if self.readout == "training-users" and len(network.user_means):
                point, spread = training_user_readout(network.user_means, mean, log_var)
                return UserVector(point, spread, method=self.name,
                                  extra={"posterior_mean": mean.tolist(), "posterior_variance": log_var.exp().tolist()})
        return UserVector(mean, log_var.exp(), method=self.name)

    # ---- diagnostics ------------------------------------------------------------------------
    @torch.no_grad()
    def _diagnose(self, features: PairFeatures, posteriors: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
        mean, log_var = posteriors or self._posteriors(features)
        users = torch.unique(features.user[features.user >= 0])
        mean, log_var = mean[users], log_var[users]
        kl = kl_to_prior(mean, log_var).mean(0)
        spread = mean.var(0, unbiased=False) if len(mean) > 1 else torch.zeros(self.latent_dim)
        # the decoder's side of collapse: how much the users' z move its predictions (sd over users of P(a ≻ b),
        # averaged over pairs); a latent can carry KL the decoder never reads
        decoder_spread = 0.0
        if len(mean) > 1 and len(features):
            pairs = features[torch.linspace(0, len(features) - 1, min(SPREAD_PAIRS, len(features))).long()]
            probs = torch.sigmoid(logits_per_user(self.head_network, pairs, mean))
            decoder_spread = float(probs.std(0, unbiased=False).mean())
        return {
            "kl_per_dim": [round(v, 4) for v in kl.tolist()],
            "kl_total": round(float(kl.sum()), 4),
            "active_units_kl": int((kl > ACTIVE_KL_NATS).sum()),
            "active_units_variance": int((spread > ACTIVE_KL_NATS).sum()),
            "latent_dim": self.latent_dim,
            "collapsed": bool((kl > ACTIVE_KL_NATS).sum() == 0 and (spread > ACTIVE_KL_NATS).sum() == 0),
            "decoder_spread": round(decoder_spread, 4),
            "decoder_ignores_z": decoder_spread < IGNORED_SPREAD,
        }

    def collapse_diagnostic(self, data: Any) -> dict:
        """Posterior-collapse check on labelled pairs of users: KL(q(z|C_u) ‖ p(z)) per latent dimension,
        averaged over users, and the number of active units (KL > 0.01 nats; Var_u E[z|C_u] > 0.01)."""
        self.check_fitted()
        features = data if isinstance(data, PairFeatures) else None
        if features is None:
            rows = read_preferences(data)
            index = {u: i for i, u in enumerate(dict.fromkeys(rows.column("user_id")))}
            features = self.featurize(rows)
            features.user = torch.tensor([index[u] for u in rows.column("user_id")])  # every user, seen or not
        return self._diagnose(self.head_inputs(features)[1])

    # ---- active queries (pluralign.methods.active) ---------------------------------------------
    @torch.no_grad()
    def query_predictions(self, pool: PairFeatures, context: PairFeatures | None):
        """``active_samples`` samples of z from q(z | context) (the prior N(0, I) without one), equal weights,
        and the decoder's P(a ≻ b | z) on the pool (the paper's §4.3)."""
        z = posterior_samples(self, context, self.active_samples)  # [S, L]
        network, pool = self.head_inputs(pool)  # a tuned backbone embeds the pool once, not once per sample
        return torch.sigmoid(logits_per_user(network, pool, z)), None
