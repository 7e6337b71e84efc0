"""MaxMin's training loop: EM over users (Algorithm 1 of Chakraborty et al. 2024), warm-started.

1. Pooled start: group 0 is trained as one BT reward on all pairs (with one group this *is* BT), then
   copied into every group, so each M-step starts from a sensible reward.
2. Initial assignment (``init``): ``"gradient"`` clusters users (k-means) by the mean gradient of their
   pairs' log-likelihood w.r.t. the pooled reward's last layer, Σ_n (1 − σ(logit_n))(h(y_c) − h(y_r)) / n_u:
   a one-step linearization of the mixture, where users of a group point the same way and a minority
   stands far from the majority (the pooled fit leaves its gradient unexplained); ``"random"`` is the
   paper's random start.
3. Repeat: M-step (one Lightning run of the responsibility-weighted BT NLL: ``epochs`` the first time,
   to move the groups away from the pooled start, then ``em_epochs``), E-step
   (hard: each user to the group whose reward best explains *all* their pairs, the paper's rule; soft:
   the posterior), until the hard assignment no longer changes (soft: responsibilities move < 1e-3).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from pluralign.data.contract import DataError, PreferenceSet
from pluralign.data.features import PairFeatures
from pluralign.data.readers import read_preferences
from pluralign.methods.common import preference_nll
from pluralign.methods.maxmin import em
from pluralign.training import TrainerOptions


class MaxMinFitting:
    """Mixin for :class:`MaxMin`: ``fit_features`` as EM, model selection over the number of groups."""

    def fit(self, data: Any, *args, **kwargs):
        data = read_preferences(data)
        super().fit(data, *args, **kwargs)
        self.fit_stats_.update(self._em_stats)
        if (recovery := self.group_recovery(data)) is not None:
            self.fit_stats_["group_recovery"] = recovery
        return self

    def group_recovery(self, data: Any) -> dict[str, Any] | None:
        """How well EM found the data's own groups, where its rows name one ``group`` per training user (as the
        synthetic benchmarks do): scikit-learn's adjusted Rand index of the users' EM groups against those
        (1 = the same partition up to names, about 0 = chance), and the users in each (data's group, EM group).
        None where some user's rows name no group or several."""
        from sklearn.metrics import adjusted_rand_score

        named: dict[str, set] = {}
        for row in read_preferences(data).rows:
            if row.get("user_id") is not None:
                named.setdefault(str(row["user_id"]), set()).add(row.get("group"))
        found = self.assignments()
        users = [u for u in found if u in named]
        if not users or any(len(named[u]) != 1 or None in named[u] for u in users):
            return None
        truth = [str(next(iter(named[u]))) for u in users]
        table = Counter((t, found[u]) for t, u in zip(truth, users))
        return {"adjusted_rand": round(float(adjusted_rand_score(truth, [found[u] for u in users])), 4),
                "users": len(users),
                "table": {t: {str(g): table[t, g] for g in range(self.n_groups) if table[t, g]}
                          for t in sorted(set(truth))}}

    def check_training_users(self, data: PreferenceSet) -> None:
        if len(data.user_ids) < self.n_groups:
            raise DataError(f"maxmin: {data.source or 'the training rows'}: {len(data.user_ids)} user(s) with a "
                            f"user_id, fewer than n_groups={self.n_groups}: EM assigns whole users to groups")

    def _m_step(self, weights: torch.Tensor, features: PairFeatures, val: PairFeatures | None,
                options: TrainerOptions, epochs: int, name: str) -> None:
        from pluralign.methods.maxmin.model import ResponsibilityObjective

        self.run_lightning(ResponsibilityObjective(self.network_, weights), features, val, options, epochs, name)
        self.network_.cpu()

    @torch.no_grad()
    def _user_log_likelihood(self, features: PairFeatures) -> torch.Tensor:
        net = self.network_.eval()
        logits = torch.cat([net.group_logits(f.prompt, f.chosen, f.rejected)
                            for f in (features[i:i + 8192] for i in range(0, len(features), 8192))])
        net.train()
        return em.user_log_likelihood(logits, features.user, len(self.user_ids_))

    def _initial_assignment(self, features: PairFeatures) -> torch.Tensor:
        n_users, n_groups = len(self.user_ids_), self.n_groups
        if self.init == "random":  # a random partition into groups of equal size (± 1): an empty group's
            # π = 0 would hold it empty for good under soft EM (log π = −inf), and train on no pair under hard EM
            generator = torch.Generator().manual_seed(self.seed)
            return F.one_hot(torch.randperm(n_users, generator=generator) % n_groups, n_groups).float()
        from sklearn.cluster import KMeans

        head = self.network_.groups[0].head.eval()  # no dropout in the signatures; back to train mode below
        known = features[features.user >= 0]
        with torch.no_grad():
            trunk = torch.nn.Sequential(*list(head)[:-1])  # all but the last linear layer (identity if linear)
            h_c = trunk(torch.cat([known.prompt, known.chosen], -1))
            h_r = trunk(torch.cat([known.prompt, known.rejected], -1))
            residual = 1 - torch.sigmoid(head[-1](h_c) - head[-1](h_r))  # d log σ(logit) / d logit
            gradient = torch.zeros(n_users, h_c.shape[1]).index_add_(0, known.user, residual * (h_c - h_r))
            counts = torch.bincount(known.user, minlength=n_users).clamp_min(1).unsqueeze(-1)
        head.train()  # Lightning does not: group 0 would take the first EM M-step without its dropout
        signature = (gradient / counts).numpy()
        labels = KMeans(n_groups, n_init=10, random_state=self.seed).fit_predict(signature)
        return F.one_hot(torch.as_tensor(labels, dtype=torch.long), n_groups).float()

    def _e_step(self, features: PairFeatures, responsibilities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_likelihood = self._user_log_likelihood(features)
        if self.hard:  # the paper: argmax of the likelihood of all the user's pairs (no prior)
            return em.harden(log_likelihood), log_likelihood
        return em.posterior(log_likelihood, torch.log(responsibilities.mean(0))), log_likelihood

    def fit_features(self, features: PairFeatures, val: PairFeatures | None, options: TrainerOptions) -> None:
        net, n_users, n_groups = self.network_, len(self.user_ids_), self.n_groups
        pooled = F.one_hot(torch.zeros(n_users, dtype=torch.long), n_groups).float()
        self._m_step(pooled, features, val, options, self.epochs, "pooled")
        responsibilities, changes, converged = pooled, [], n_groups == 1
        if n_groups > 1:
            for group in net.groups[1:]:
                group.load_state_dict(net.groups[0].state_dict())
            responsibilities = self._initial_assignment(features)
            for iteration in range(self.em_iterations):
                # the first M-step trains the new groups away from the pooled start: a full run
                epochs = self.epochs if iteration == 0 else self.em_epochs
                self._m_step(responsibilities, features, val, options, epochs, f"em{iteration}")
                updated, _ = self._e_step(features, responsibilities)
                moved = (updated - responsibilities).abs().max(-1).values
                changes.append(int((moved > 0.5).sum()) if self.hard else float(moved.max()))
                responsibilities = updated
                if (changes[-1] == 0) if self.hard else (changes[-1] < 1e-3):
                    converged = True
                    break
        net.assignment.copy_(responsibilities)
        net.proportions.copy_(responsibilities.mean(0))
        self._finish(features, changes, converged)

    @torch.no_grad()
    def _finish(self, features: PairFeatures, changes: list, converged: bool) -> None:
        net = self.network_.eval()
        rewards = torch.cat([net.group_rewards(features.prompt, features.chosen),
                             net.group_rewards(features.prompt, features.rejected)])
        net.reward_mean.copy_(rewards.mean(0))
        net.reward_std.copy_(rewards.std(0).clamp_min(1e-6))
        log_likelihood = self._user_log_likelihood(features)
        marginal = float(torch.logsumexp(log_likelihood + torch.log(net.proportions), -1).sum())
        n_parameters = sum(p.numel() for p in net.groups.parameters()) + self.n_groups - 1
        self._em_stats = {
            "em_iterations": len(changes), "em_converged": converged, "em_changes": changes,
            "group_sizes": net.assignment.sum(0).tolist(), "log_likelihood": round(marginal, 3),
            "bic": round(n_parameters * math.log(max(len(features), 1)) - 2 * marginal, 3),
        }

    def select_groups(self, data: Any, candidates: Sequence[int] = (1, 2, 3, 4), holdout: float = 0.2,
                      **trainer_kwargs) -> dict[str, Any]:
        """Fit one model per candidate number of groups on all but the last ``holdout`` share of each
        user's pairs; score the held-out pairs by their mean NLL under the user's assignment (lower is
        better) and report BIC too. Returns ``{"scores": {G: {...}}, "best": G}`` (best by held-out NLL)."""
        data = read_preferences(data)
        seen: dict[Any, list[int]] = {}
        for i, row in enumerate(data.rows):
            seen.setdefault(row.get("user_id"), []).append(i)
        held = {i for rows in seen.values() for i in rows[len(rows) - int(len(rows) * holdout):]}
        train = data.subset([i for i in range(len(data)) if i not in held], ":select-train")
        test = data.subset(sorted(held), ":select-heldout")
        trainer_kwargs.setdefault("progress", False)
        scores = {}
        for n_groups in candidates:
            model = type(self)(**{**self.get_config(), "n_groups": n_groups}).fit(train, **trainer_kwargs)
            features = model.featurize(test)
            users = model.network_.users_for(features.user)
            logits = model.logits_features(features, users)
            scores[n_groups] = {"heldout_nll": float(preference_nll(logits)), "bic": model.fit_stats_["bic"],
                                "group_sizes": model.fit_stats_["group_sizes"]}
        best = min(scores, key=lambda g: scores[g]["heldout_nll"])
        return {"scores": scores, "best": best}
