"""The estimator every method shares: ``fit``, ``prefer_proba``, ``score``, ``infer_user``, save/load.

Constructor arguments are the config (scikit-learn spirit), validated at once. A subclass provides
``build_network`` (a :class:`PreferenceNetwork`), optionally ``objective`` (default: the BT likelihood of
its logits) and ``adapt`` (few-shot user inference); ``fit_features`` is overridden only by methods
whose training is not one Lightning run (MaxMin's EM).

``finetune_layers`` > 0 is the "Large" setting of PAL (Chen et al. 2024, §4) and of VPL's LLM experiments
(Poddar et al. 2024, a fine-tuned backbone) for any method whose training is one Lightning run: after
the fit on cached embeddings of the frozen backbone, the top ``finetune_layers`` transformer layers train
jointly with the method's network for ``finetune_epochs`` epochs at ``finetune_lr``, by the method's own
objective (:class:`~pluralign.methods.tuned.TunedObjective`). Starting from the fitted head (linear probe,
then fine-tune: Kumar et al. 2022) keeps a random head's gradients from scrambling the pretrained features.
With ``finetune_lora_rank`` > 0 those layers keep their weights and train LoRA adapters of that rank
instead (VPL's reference code fine-tunes its LLM with LoRA, r = 8).

``center_features`` subtracts the training rows' mean prompt and response vectors from every input, text or
precomputed, frozen or tuned (:class:`~pluralign.data.features.FeatureCenter`, saved with the weights).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import numbers
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch

from pluralign.backbones import TextEncoder
from pluralign.backbones.text_encoder import DEFAULT_BACKBONE, POOLINGS
from pluralign.data.cache import EmbeddingCache
from pluralign.data.contract import DataError, PreferenceSet, ignored_columns_note, messages_to_text
from pluralign.data.features import FeatureCenter, PairDataset, PairFeatures, featurize, keep_batch, user_tensor
from pluralign.data.readers import read_preferences
from pluralign.io import fingerprint
from pluralign.methods.inputs import UnknownUser, as_float_tensor, checked_user_vector, embedding_inputs, is_user_list
from pluralign.methods.network import PreferenceNetwork, PreferenceObjective
from pluralign.methods.run_files import load_run, save_run
from pluralign.methods.tuned import TunedBackbone, TunedNetwork, TunedObjective
from pluralign.training import (ObjectiveModule, TrainerOptions, build_trainer, caller_random_state, check_resume,
                                check_trainer_options, quiet_lightning)
from pluralign.training.trainer import TRAINER_SETTINGS, interrupt_as_keyboard_interrupt, quiet_moved_checkpoints
from pluralign.training.memory import PeakMemory


def _plain(value: Any) -> Any:
    """numpy's scalars (an argument from a sweep's array) as the Python numbers config.json can hold."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class UserVector:
    """A user as the method sees them: ``mean``, the vector predictions use (and its variance where the method
    has one); ``extra`` holds what else the method inferred, such as VPL's encoder mean before its readout.
    ``fit``: the fit whose weights give the vector its meaning (:attr:`PreferenceModel.fit_id`), so a vector kept
    from one fit is refused by another fit of the same method, where it would mean something else ("" for a
    vector made by hand or saved before 2026-11-29: not checked)."""

    mean: torch.Tensor
    variance: torch.Tensor | None = None
    method: str = ""
    n_pairs: int = 0
    extra: dict = field(default_factory=dict)
    fit: str = ""

    def __post_init__(self) -> None:  # a list or array of numbers is taken as the tensor it means
        self.mean = as_float_tensor(self.mean, "UserVector.mean")
        if self.variance is not None:
            self.variance = as_float_tensor(self.variance, "UserVector.variance")

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "n_pairs": self.n_pairs,
            "mean": self.mean.tolist(),
            "variance": None if self.variance is None else self.variance.tolist(),
            **({"extra": self.extra} if self.extra else {}),
            **({"fit": self.fit} if self.fit else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "UserVector":
        """A user written by :meth:`to_dict` (``pluralign adapt``'s user.json), to predict with in Python."""
        if not isinstance(d, dict) or "mean" not in d:
            raise ValueError("a user vector is a mapping with a 'mean' (as pluralign adapt writes user.json)")
        return cls(d["mean"], d.get("variance"), d.get("method", ""), int(d.get("n_pairs", 0)), d.get("extra", {}),
                   str(d.get("fit", "")))


def _names_a_file(text: str) -> bool:
    """Whether ``text`` is the path of a file; False for what cannot be a path (too long a name, a NUL)."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def training_data_identity(features: PairFeatures, user_ids: list[str]) -> str:
    """The pairs a fit trains on and its users in order, as a checkpoint records them: 'N pairs of U users,
    sha256 …' of the features' bytes and the user ids."""
    digest = hashlib.sha256((fingerprint(features.as_batch()) + json.dumps(user_ids)).encode()).hexdigest()
    return f"{len(features)} pairs of {len(user_ids)} users, sha256 {digest[:16]}"


class ConfigError(ValueError):
    """A constructor argument out of range; the message names the method and the argument."""


class TrainingDiverged(RuntimeError):
    """The fitted weights hold NaN or inf (a learning rate too large for the data): the fit is refused."""


class PreferenceModel:
    """Base estimator. Subclasses set ``name`` and call ``super().__init__`` with the shared arguments."""

    name: ClassVar[str] = ""
    uses_user_ids: ClassVar[bool] = True  # False: trains on pooled pairs (BT, MiCRo)
    # what to fit instead on rows without a user_id (check_training_users' advice)
    without_users: ClassVar[str] = "bt and micro train on pooled pairs"
    # arguments added after runs were saved, with the value those runs were fitted with: a saved config without
    # one loads with it, not with a default that has since changed
    saved_before: ClassVar[dict[str, Any]] = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> "PreferenceModel":
        # an argument of the wrong type is named here, before __init__ compares it ("'>' not supported between
        # 'str' and 'int'"); build_model has already made a preset's "1e-3" the number, Python gets no such help
        if args or kwargs:
            from pluralign.config import check_known_arguments, checked_arguments

            signature = inspect.signature(cls.__init__)
            check_known_arguments(cls, kwargs)  # as a --config's unknown key is named
            arguments = {}
            for name, value in list(signature.bind(None, *args, **kwargs).arguments.items())[1:]:  # past self
                keywords = signature.parameters[name].kind == inspect.Parameter.VAR_KEYWORD
                arguments.update(value if keywords else {name: value})
            checked_arguments(cls, arguments, parse_strings=False)
        return super().__new__(cls)

    def __init__(
        self,
        epochs: int = 30,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 256,
        seed: int = 0,
        backbone: str | None = None,
        pooling: str = "mean",
        max_length: int = 256,
        cache_dir: str | None = None,
        finetune_layers: int = 0,
        finetune_epochs: int = 3,
        finetune_lr: float = 3e-4,
        finetune_lora_rank: int = 0,
        center_features: bool = False,
    ) -> None:
        self.finetune_layers, self.finetune_epochs, self.finetune_lr = finetune_layers, finetune_epochs, finetune_lr
        self.finetune_lora_rank = finetune_lora_rank
        self.epochs, self.lr, self.weight_decay, self.batch_size, self.seed = epochs, lr, weight_decay, batch_size, seed
        self.backbone, self.pooling, self.max_length, self.cache_dir = backbone, pooling, max_length, cache_dir
        self.center_features = center_features
        self.require(epochs >= 1, "epochs", "must be at least 1")
        self.require(lr > 0, "lr", "must be positive")
        self.require(weight_decay >= 0, "weight_decay", "must be non-negative")
        self.require(batch_size >= 1, "batch_size", "must be at least 1")
        # the range of numpy's seeds (Lightning's seed_everything): checked here, not after the data is read;
        # a seed of the wrong type is checked_arguments' to name
        self.require(not isinstance(seed, numbers.Real) or 0 <= seed <= 2**32 - 1, "seed",
                     "must be an integer in [0, 2**32 - 1]")
        self.require(max_length >= 1, "max_length", "must be at least 1 (tokens a text keeps)")
        self.require(pooling in POOLINGS, "pooling", f"must be one of {', '.join(POOLINGS)}")
        self.require(finetune_layers >= 0, "finetune_layers", "must be 0 (frozen backbone) or a number of top layers")
        self.require(not finetune_layers or pooling != "input-mean", "finetune_layers",
                     "must be 0 with pooling='input-mean': it reads no transformer layer")
        self.require(finetune_epochs >= 1, "finetune_epochs", "must be at least 1")
        self.require(finetune_lr > 0, "finetune_lr", "must be positive")
        self.require(finetune_lora_rank >= 0, "finetune_lora_rank",
                     "must be 0 (the layers train in full) or a LoRA rank")
        self.require(not finetune_lora_rank or finetune_layers > 0, "finetune_lora_rank",
                     "needs finetune_layers > 0: the top layers that get the adapters")
        self.network_: PreferenceNetwork | None = None
        self.feature_center_: FeatureCenter | None = None  # fitted where center_features
        self.user_ids_: list[str] = []
        self.fit_stats_: dict[str, Any] = {}
        self.uses_embeddings_ = False
        self.dims_: tuple[int, int] = (0, 0)  # prompt and response feature widths
        self.is_global_zero_ = True
        self._encoder: TextEncoder | None = None
        self._encoder_settings: tuple = ()  # (backbone, pooling, max_length) the encoder was built with
        self._cache: EmbeddingCache | None = None
        self._cache_dir: str | None = None

    # ---- config -----------------------------------------------------------------------------
    def require(self, condition: bool, argument: str, message: str) -> None:
        if not condition:
            raise ConfigError(f"{self.name}: {argument}={getattr(self, argument, None)!r} {message}")

    def get_config(self) -> dict[str, Any]:
        names = []
        for klass in type(self).__mro__:
            if klass is object:
                continue
            params = inspect.signature(klass.__init__).parameters
            names += [n for n, p in params.items() if n != "self" and p.kind == p.POSITIONAL_OR_KEYWORD]
        return {n: _plain(getattr(self, n)) for n in dict.fromkeys(names)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # ---- subclass hooks ---------------------------------------------------------------------
    def build_network(self, prompt_dim: int, response_dim: int, n_users: int) -> PreferenceNetwork:
        raise NotImplementedError

    def objective(self, features: PairFeatures) -> torch.nn.Module:
        """The training loss of the method's own network (``head_network``) on embedded features."""
        return PreferenceObjective(self.head_network)

    def restore_network(self, prompt_dim: int, response_dim: int, n_users: int) -> PreferenceNetwork:
        """The network a saved model's weights load into: the built one (on its tuned backbone, if any)."""
        head = self.build_network(prompt_dim, response_dim, n_users)
        return self.tuned_network(head) if self.finetune_layers else head

    def check_training_users(self, data: PreferenceSet) -> None:
        """Raise where ``data`` holds too few users for the method to learn from: a method that learns each
        training user's parameters (``uses_user_ids``) needs a user_id on some row. Without one (a misspelled
        column is dropped as unknown) it would fit 0 users, and every user would get the untrained mix."""
        if self.uses_user_ids and not data.user_ids:
            raise DataError(f"{self.name}: {data.source or 'the training rows'}: no row has a user_id"
                            f"{ignored_columns_note(data)}; {self.name} learns each training user's weights "
                            f"({self.without_users})")

    def training_pairs(self, features: PairFeatures) -> PairFeatures:
        """The pairs the objective trains on (VPL leaves out pairs without a user)."""
        return features

    def adapt(self, features: PairFeatures) -> UserVector:
        """Few-shot: a user vector from k labelled pairs of a new user. Default: the population."""
        return self.population_user()

    # ---- features ---------------------------------------------------------------------------
    @property
    def encoder(self) -> TextEncoder:
        # built again where its settings changed since (model.pooling = "cls" before a refit): the old one would
        # embed the fit while config.json records the new setting, which a reloaded model then embeds with
        settings = (self.backbone, self.pooling, self.max_length)
        if self._encoder is None or self._encoder_settings != settings:
            self._encoder = TextEncoder(self.backbone, pooling=self.pooling, max_length=self.max_length)
            self._encoder_settings = settings
        return self._encoder

    @property
    def cache(self) -> EmbeddingCache:
        if self._cache is None or self._cache_dir != self.cache_dir:
            self._cache, self._cache_dir = EmbeddingCache(self.cache_dir), self.cache_dir
        return self._cache

    def featurize(self, data: PreferenceSet, progress: bool = False) -> PairFeatures:
        """The network's inputs: cached embeddings, or token ids where the backbone is tuned ("Large")."""
        index = {u: i for i, u in enumerate(self.user_ids_)}
        fitted = self.network_ is not None  # scoring or adapting, not the fit itself: rows must be the fit's kind
        if fitted:
            self.check_rows_kind(data)
        if self.tuned is None or data.has_embeddings:
            features = featurize(data, None if data.has_embeddings else self.encoder, self.cache, index, progress)
            if fitted and data.has_embeddings:
                self.check_widths(data, features)
            return self.feature_center_(features) if self.feature_center_ is not None else features
        columns = [data.column("prompt", ""), data.column("chosen"), data.column("rejected")]
        return PairFeatures(*self.text_features(columns), user_tensor(data, index))

    def check_rows_kind(self, data: PreferenceSet, fitted_on: str = "") -> None:
        """Text rows for a model fitted on text, embedding rows for one fitted on embeddings: the other kind
        fails deep in the network ("mat1 and mat2 shapes cannot be multiplied")."""
        where, fitted_on = data.source or "these rows", fitted_on or f"the run ({self.name}) was fitted on"
        if self.uses_embeddings_ and not data.has_embeddings:
            raise DataError(f"{where}: {fitted_on} embedding features of width "
                            f"{self.dims_[1]}; these rows are text (give chosen_embedding and rejected_embedding)")
        if not self.uses_embeddings_ and data.has_embeddings:
            raise DataError(f"{where}: {fitted_on} text (backbone "
                            f"{self.backbone or DEFAULT_BACKBONE}); these rows hold precomputed embeddings")

    def check_widths(self, data: PreferenceSet, features: PairFeatures, fitted_on: str = "") -> None:
        """Embedding rows as wide as the fit's: other widths fail deep in the network, naming no file."""
        fitted_on = fitted_on or f"the run ({self.name}) was fitted on"
        for part, fitted, given in (("response", self.dims_[1], features.response_dim),
                                    ("prompt", self.dims_[0], features.prompt_dim)):
            if fitted != given:
                raise DataError(f"{data.source or 'these rows'}: {fitted_on} {part} "
                                f"embedding features of width {fitted}; these rows give width {given}")

    def backbone_layers(self) -> int | None:
        """The backbone's transformer layer count, from its local config alone (no weights loaded); None where
        the config cannot be read (the backbone's own load then says why)."""
        from transformers import AutoConfig

        from pluralign.backbones.text_encoder import _resolve

        try:
            return getattr(AutoConfig.from_pretrained(_resolve(self.backbone)), "num_hidden_layers", None)
        except (OSError, ValueError, ImportError):
            return None

    # ---- the "Large" setting: a backbone that trains with the head ----------------------------
    @property
    def tuned(self) -> TunedNetwork | None:
        return self.network_ if isinstance(self.network_, TunedNetwork) else None

    @property
    def head_network(self) -> PreferenceNetwork:
        """The method's own network: what it reads cached embeddings with, or what sits on the tuned backbone."""
        network = self.check_fitted()
        return network.head if isinstance(network, TunedNetwork) else network

    def tuned_backbone(self) -> TunedBackbone:
        return TunedBackbone(self.backbone, self.finetune_layers, self.pooling, self.max_length,
                             lora_rank=self.finetune_lora_rank)

    def tuned_network(self, head: PreferenceNetwork) -> TunedNetwork:
        return TunedNetwork(self.tuned_backbone(), head, self.feature_center_)

    @torch.no_grad()
    def head_inputs(self, features: PairFeatures) -> tuple[PreferenceNetwork, PairFeatures]:
        """The method's own network and its input vectors: token ids are embedded once (for few-shot work
        that only touches the head, so that a fit of a user vector does not run the backbone every step)."""
        network = self.check_fitted()
        if isinstance(network, TunedNetwork):
            return network.head, network.embed_features(features)
        return network, features

    def finetune(self, options: TrainerOptions) -> PairFeatures:
        """Train the top backbone layers with the fitted network by the method's objective; returns the
        token-id features it trained on."""
        self.network_ = self.tuned_network(self.network_).train()  # dropout as in fine-tuning
        tokens = self.training_pairs(self.featurize(self.fit_rows_))
        self.run_lightning(TunedObjective(self.network_, self.objective(tokens)), tokens, None, options,
                           self.finetune_epochs, name="finetune", lr=self.finetune_lr)
        self.network_.cpu().eval()
        return tokens

    # ---- training -----------------------------------------------------------------------------
    @caller_random_state()
    def fit(self, data: Any, val_data: Any = None, trainer: TrainerOptions | None = None,
            **trainer_kwargs) -> "PreferenceModel":
        """Train on preference rows (a path, a PreferenceSet, a ``datasets`` dataset, a list of dicts or a dict of
        columns).

        ``trainer_kwargs`` are :class:`TrainerOptions` fields (accelerator, devices, strategy, precision,
        out_dir, resume, progress); given beside ``trainer``, they replace those fields of it. An ``out_dir`` that
        holds another tool's model, checkpoints or logs is refused (:meth:`TrainerOptions.check_folder`).
        """
        from pluralign.config import checked_arguments

        options = replace(trainer, **trainer_kwargs) if trainer else TrainerOptions(**trainer_kwargs)
        checked_arguments(type(self), self.get_config())  # what build_model checks, for models built in Python
        options.check_checkpoints_are_of(self.name)
        options.check_folder()  # another tool's model or Lightning project: refused before anything is written
        if str(options.accelerator).lower() not in ("cpu", "auto"):
            check_trainer_options(options)  # a missing GPU: one line, before the embedding
        data = read_preferences(data)
        if self.finetune_layers and data.has_embeddings:
            raise ConfigError(f"{self.name}: finetune_layers={self.finetune_layers} needs text rows; "
                              f"{data.source or 'these rows'} hold precomputed embeddings")
        if self.finetune_layers and (layers := self.backbone_layers()) is not None:  # before the head trains
            backbone = self.backbone or DEFAULT_BACKBONE
            self.require(self.finetune_layers <= layers, "finetune_layers",
                         f"is more than the {layers} transformer layers of backbone {backbone}")
        self.network_ = None  # a refit starts over: features are the frozen backbone's again (PAL's "Large")
        self.feature_center_ = None
        L.seed_everything(self.seed, workers=True, verbose=False)
        self.user_ids_ = data.user_ids if self.uses_user_ids else []
        self.check_training_users(data)
        if held_out := sum(role is not None for role in data.column("role")):  # a split's test.jsonl, most likely
            logging.getLogger("pluralign").warning(
                "%s: %d training row(s) have a role (context/query: unseen users' held-out rows); %s trains on them "
                "as ordinary pairs", data.source or "the training rows", held_out, self.name)
        self.uses_embeddings_ = data.has_embeddings
        with PeakMemory() as memory:  # embedding included: a cold cache loads the backbone
            start = time.perf_counter()
            features = self.training_pairs(self.featurize(data, progress=options.progress))  # counted as trained
            if self.center_features:
                self.feature_center_ = FeatureCenter.of(features)
                features = self.feature_center_(features)
            self.dims_ = (features.prompt_dim, features.response_dim)
            # what the checkpoints of this fit were trained on: a --resume on other pairs, or on the same users
            # listed in another order (a user's row of weights is their place in user_ids_), is refused
            self._training_data = training_data_identity(features, self.user_ids_)
            val_features = None if val_data is None else self.validation_features(read_preferences(val_data))
            embed_seconds = time.perf_counter() - start
            self.network_ = self.build_network(*self.dims_, len(self.user_ids_))
            start = time.perf_counter()
            self.fit_rows_ = data  # the rows themselves, for training that needs their text (fine-tuning)
            self.resumed_epochs_ = 0  # epochs a --resume checkpoint had already trained: not run, not timed
            self.trained_epochs_ = 0  # epochs this fit ran, every stage's
            self.retrained_on_resume_ = False  # a stage trained on a --resume: later stages' checkpoints are stale
            options.claim_folder(self.name)
            options.clear_logs()  # a fresh fit: no earlier fit's logs beside this fit's,
            options.clear_checkpoints()  # nor its last.ckpt for a later --resume to load
            try:
                self.fit_features(features, val_features, options)
                if self.finetune_layers:
                    self.finetune(options)
            except RuntimeError as err:  # torch's words for a step size float32 cannot hold
                if "without overflow" not in str(err):
                    raise
                self.network_ = None
                options.clear_checkpoints()
                raise TrainingDiverged(f"{self.name}: the optimizer's step overflowed float32 ({err}); "
                                       + self.lower_lr()) from None
            except ValueError as err:  # Pyro's words (VPL) for a distribution given NaN: 30 lines of tensors
                if "but found invalid values" not in str(err):
                    raise
                self.network_ = None
                options.clear_checkpoints()
                parameter = str(err).split(" (", 1)[0].removeprefix("Expected parameter ")
                raise TrainingDiverged(f"{self.name}: training diverged: the {parameter} of a distribution in the "
                                       "ELBO became NaN or inf during training; " + self.lower_lr()) from None
            finally:
                del self.fit_rows_
            seconds = time.perf_counter() - start
            threads = torch.get_num_threads()  # what trained (TrainerOptions.threads); the caller's comes back
        self.network_.cpu().eval()
        self.network_.zero_grad(set_to_none=True)  # the last step's gradients: a copy of the weights nothing reads
        self.network_.fit_id = None  # the weights are final only now: an id a training stage took is stale
        weights = self.network_.state_dict().items()
        if diverged := [n for n, w in weights if w.is_floating_point() and not w.isfinite().all()]:
            self.network_ = None  # not a fitted model: nothing to predict with or save, nor to --resume from
            options.clear_checkpoints()
            raise TrainingDiverged(f"{self.name}: training diverged: {diverged[0]} holds NaN or inf after the fit"
                                   + (f" ({len(diverged)} weight tensors in all)" if len(diverged) > 1 else "")
                                   + "; " + self.lower_lr())
        # finite weights can still overflow when applied (a fine-tuned model reads tokens, not these vectors: its
        # predictions are checked where they are made)
        if not self.finetune_layers and not self._forward_pass_is_finite(features[:64]):
            self.network_ = None
            options.clear_checkpoints()
            raise TrainingDiverged(f"{self.name}: training diverged: the weights are finite, but its predictions on "
                                   f"training pairs are NaN or inf; " + self.lower_lr())
        # the epochs fit_seconds covers, every stage's (fine-tuning's, MaxMin's EM steps), those a --resume
        # checkpoint had already run not
        epochs = self.trained_epochs_
        if self.resumed_epochs_ and not self.trained_epochs_:  # else "fit N pairs in 0.0 s (0 pairs/s)" says nothing
            logging.getLogger("pluralign").warning("%s: --resume: already at epoch %d of %d: nothing to train",
                                                   self.name, self.resumed_epochs_, self.resumed_epochs_)
        self.fit_stats_ = {
            "n_pairs": len(features),
            "n_users": len(self.user_ids_),
            "epochs": epochs,
            "embed_seconds": round(embed_seconds, 3),
            "fit_seconds": round(seconds, 3),
            "pairs_per_second": round(len(features) * epochs / max(seconds, 1e-9), 1),
            "threads": threads,
            **memory.stats(),
        }
        return self

    @torch.no_grad()
    def _forward_pass_is_finite(self, sample: PairFeatures) -> bool:
        network = self.network_
        if self.user_ids_:
            users = network.known_users(sample.user.clamp_min(0))  # a row without a user: any user will do here
        else:
            users = network.population_user().expand(len(sample), -1)
        return bool(torch.isfinite(network.logits(sample.prompt, sample.chosen, sample.rejected, users)).all())

    def validation_features(self, data: PreferenceSet) -> PairFeatures:
        """Validation rows of the training rows' kind and widths: checked before training, not at its first
        validation step."""
        fitted_on = f"validation rows; {self.name} trains on"
        self.check_rows_kind(data, fitted_on)
        features = self.featurize(data)
        if data.has_embeddings:
            self.check_widths(data, features, fitted_on)
        return features

    def lower_lr(self) -> str:
        return f"lower lr={self.lr}" + (f" or finetune_lr={self.finetune_lr}" if self.finetune_layers else "")

    def fit_features(self, features: PairFeatures, val_features: PairFeatures | None, options: TrainerOptions) -> None:
        """One Lightning run of ``self.objective`` over the pairs."""
        self.run_lightning(self.objective(features), features, val_features, options, self.epochs)

    def run_lightning(self, objective: torch.nn.Module, features: PairFeatures, val_features: PairFeatures | None,
                      options: TrainerOptions, epochs: int, name: str = "fit", lr: float | None = None) -> L.Trainer:
        with quiet_lightning(not options.progress):
            # the checkpoints carry the method's settings: a --resume under other settings is refused
            settings = {"method": self.name, **self.get_config(),
                        **({"training_data": self._training_data} if hasattr(self, "_training_data") else {}),
                        "trainer": {k: getattr(options, k) for k in TRAINER_SETTINGS}}
            trainer = build_trainer(options, max_epochs=epochs, name=name, settings=settings)
            # batch_size is the global batch: each of the world_size processes takes its share, so DDP
            # takes the same optimization steps as one process
            per_process = max(1, self.batch_size // trainer.world_size)

            def loader(f: PairFeatures, shuffle: bool) -> torch.utils.data.DataLoader:
                # a loader draws its seed from a generator: validation's own, so that validating leaves the global
                # one, which shuffles the training pairs, where it was (the same weights with or without val_data)
                return torch.utils.data.DataLoader(PairDataset(f), batch_size=per_process, shuffle=shuffle,
                                                   collate_fn=keep_batch,
                                                   generator=None if shuffle else torch.Generator().manual_seed(0))

            module = ObjectiveModule(objective, lr=lr or self.lr, weight_decay=self.weight_decay)
            resume_from = options.checkpoint_to_resume(name)
            if resume_from and getattr(self, "retrained_on_resume_", False):
                # an earlier stage trained again (epochs raised): this stage's checkpoint grew from its old weights
                logging.getLogger("pluralign").info("%s: --resume: %s trains again from the new weights",
                                                    self.name, name)
                resume_from = None
            if resume_from:
                check_resume(resume_from, module, epochs, name, settings)
            with quiet_moved_checkpoints(), interrupt_as_keyboard_interrupt(trainer):
                trainer.fit(module, loader(features, True),
                            None if val_features is None else loader(val_features, False), ckpt_path=resume_from)
            if resume_from:
                self.resumed_epochs_ = getattr(self, "resumed_epochs_", 0) + epochs - module.epochs_trained
            self.trained_epochs_ = getattr(self, "trained_epochs_", 0) + module.epochs_trained
            self.retrained_on_resume_ = getattr(self, "retrained_on_resume_", False) or (
                options.resume and module.epochs_trained > 0)
        self.is_global_zero_ = trainer.is_global_zero
        return trainer

    # ---- active queries (pluralign.methods.active) ----------------------------------------------
    # whether query_predictions' points are the same for every context (prior draws, or groups), only their
    # weights moving with the answers: a sequence of questions then needs their predictions once
    reweights_prior_points: ClassVar[bool] = False

    def query_predictions(self, pool: PairFeatures, context: PairFeatures | None) -> tuple[torch.Tensor, Any]:
        """The posterior over a new user given ``context`` (None: the prior) as S points, and each point's
        P(a ≻ b) on the pool: ([S, M] probabilities, [S] posterior weights, or None for equal ones)."""
        raise NotImplementedError

    @property
    def has_active_queries(self) -> bool:
        """Whether the method has a posterior over users to choose questions by."""
        return type(self).query_predictions is not PreferenceModel.query_predictions

    def select_queries(self, pool_pairs: Any, n: int = 1, context: Any = None) -> list[int]:
        """Indices of ``n`` pool pairs to ask at once, best first: ``n=1``, the pair whose answer would tell most
        about the user (expected information gain under the posterior given ``context``); more, chosen by what
        their answers tell together (BatchBALD: each next pair of largest joint gain with those before it), so
        one question (a pair stored in both orders, or copied) is not chosen twice while the pool has others.

        ``pool_pairs``: unlabelled candidates as rows (or anything ``fit`` reads) with the contract's columns;
        which response stands in ``chosen`` does not matter (the gain is the same either way). ``context``: the
        user's answers so far as labelled rows, ``chosen`` the response they preferred (None: no answers yet);
        pool pairs already answered come last."""
        if not self.has_active_queries:
            raise ValueError(f"{self.name}: no posterior over users to choose questions by (active queries: "
                             "every method but bt)")
        from pluralign.methods.active import select_queries

        return select_queries(self, pool_pairs, n, context)

    def next_query(self, pool_pairs: Any, context: Any = None) -> int:
        """The index of the one pool pair to ask next (``select_queries`` with ``n=1``); ask, put the answered
        row (the preferred response as ``chosen``) into ``context``, and call again."""
        return self.select_queries(pool_pairs, 1, context)[0]

    # ---- users --------------------------------------------------------------------------------
    def check_fitted(self) -> PreferenceNetwork:
        if self.network_ is None:
            raise RuntimeError(f"{self.name}: call fit() or from_pretrained() first")
        return self.network_

    @property
    def fit_id(self) -> str:
        """The first 16 hex digits of the sha256 of the fitted weights: what a user vector of this fit carries.
        The same after save and load; another fit (a refit, another seed) has another. Computed once per network."""
        network = self.check_fitted()
        if getattr(network, "fit_id", None) is None:
            network.fit_id = fingerprint(network.state_dict())[:16]
        return network.fit_id

    def population_user(self) -> UserVector:
        return UserVector(self.check_fitted().population_user().detach(), method=self.name, fit=self.fit_id)

    def prior_user(self) -> UserVector:
        """A new user before any answer (``infer_user`` at k = 0): the population, where the few-shot rule's prior
        is centred (a method whose rule reads another prior mean says so)."""
        return self.population_user()

    def known_user(self, user_id: str) -> UserVector:
        network = self.check_fitted()
        if not self.uses_user_ids:  # trained on pooled pairs: every user id gets the one population model
            return self.population_user()
        if user_id not in self.user_ids_:
            known = ", ".join(self.user_ids_[:5]) + (" ..." if len(self.user_ids_) > 5 else "")
            raise UnknownUser(f"{self.name}: unknown user {user_id!r} (known: {known or 'none'}); "
                              "pass a few labelled pairs of theirs to adapt instead")
        index = torch.tensor([self.user_ids_.index(user_id)])
        with torch.no_grad():
            return UserVector(network.known_users(index)[0], method=self.name, fit=self.fit_id)

    def infer_user(self, pairs: Any) -> UserVector:
        """Few-shot: the vector of a new user from their labelled pairs (k = 0 gives :meth:`prior_user`: the
        population, or GPM's training users' mean under ``few_shot="training-users"``). A method
        without user vectors (bt) returns the population with ``n_pairs=0``: the pairs change nothing."""
        network = self.check_fitted()
        if pairs is None or (isinstance(pairs, (list, PreferenceSet)) and len(pairs) == 0):
            return self.prior_user()
        if isinstance(pairs, str) and pairs in self.user_ids_ and not Path(pairs).exists():
            raise DataError(f"{pairs}: no such file; infer_user reads labelled pairs (a path or rows), and the "
                            f"trained user {pairs!r} is known_user({pairs!r})")
        if not isinstance(pairs, PairFeatures):
            pairs = read_preferences(pairs)
            users = sorted({str(u) for u in pairs.column("user_id") if u is not None})
            if len(users) > 1:  # allowed (one person under two ids), but more often a filtering slip
                logging.getLogger("pluralign").warning(
                    "%s holds the pairs of %d users (%s, ...): they are read as one user's",
                    pairs.source or "the pairs", len(users), ", ".join(users[:3]))
        features = pairs if isinstance(pairs, PairFeatures) else self.featurize(pairs)
        if len(features) == 0:
            return self.prior_user()
        vector = self.adapt(features)
        vector.n_pairs = len(features) if network.user_dim else 0
        vector.fit = self.fit_id
        return vector

    def resolve_user(self, user: Any) -> UserVector:
        if user is None:
            return self.population_user()
        if isinstance(user, UserVector):
            if user.method and user.method != self.name:  # same width, other meaning: PAL's weights are no VPL latent
                raise ValueError(f"{self.name}: a user vector of {user.method}; infer the user with this model")
            if user.fit and user.fit != self.fit_id:  # same method, other weights: another fit's prototypes or latents
                raise ValueError(f"{self.name}: a user vector of another fit (fit {user.fit}, this run's "
                                 f"{self.fit_id}); infer the user again with this model")
            return user
        if isinstance(user, str):
            if user not in self.user_ids_ and _names_a_file(user):  # labelled pairs by their path, as fit reads
                return self.infer_user(user)
            return self.known_user(user)
        if isinstance(user, numbers.Real) and not isinstance(user, bool) and float(user).is_integer():
            return self.known_user(str(int(user)))  # the reader's id of 3 or 3.0 (numpy's too) is "3"
        if isinstance(user, (bool, numbers.Number, torch.Tensor, np.ndarray)):
            raise TypeError(f"{self.name}: user={type(user).__name__} must be a user id, a UserVector or a few "
                            "labelled pairs (wrap a raw vector as UserVector(mean))")
        return self.infer_user(user)

    def user_matrix(self, user: Any, n: int) -> torch.Tensor:
        """[n, user_dim]: one user for all rows, or a sequence of n users (ids, vectors, None)."""
        width = self.check_fitted().user_dim
        if isinstance(user, np.ndarray) and user.dtype.kind in "OUSiu" or type(user).__name__ in ("Series", "Index"):
            user = user.tolist()  # per-row ids as numpy or pandas hold them (a float array stays a raw vector)
        if is_user_list(self.name, user):
            if len(user) != n:
                raise ValueError(f"{self.name}: {len(user)} users for {n} rows; give one user per row, or one "
                                 "user (an id, a UserVector, labelled pairs or None) for all")
            def key(u: Any) -> Any:  # ids by value; vectors and labelled pairs (unhashable lists) by identity
                return u if u is None or isinstance(u, (str, int, float)) else id(u)

            vectors = {}
            for u in user:
                if key(u) not in vectors:
                    vectors[key(u)] = checked_user_vector(self.name, self.resolve_user(u).mean, width)
            return torch.stack([vectors[key(u)] for u in user])
        return checked_user_vector(self.name, self.resolve_user(user).mean, width).expand(n, -1)

    # ---- prediction ---------------------------------------------------------------------------
    def _texts_to_features(self, prompts: Any, *responses: Any, cache: bool = True) -> list[torch.Tensor]:
        self.check_fitted()  # before the inputs are checked against the fit's widths
        if any(isinstance(r, np.ndarray) for r in responses):  # numpy embeddings, as the rows may hold them too
            responses = tuple(as_float_tensor(r, "responses") for r in responses)
            prompts = as_float_tensor(prompts, "prompts") if isinstance(prompts, np.ndarray) else prompts
        if any(isinstance(r, torch.Tensor) for r in responses):  # precomputed embeddings
            if self.tuned is not None:
                raise TypeError(f"{self.name}: a fine-tuned backbone reads text (token ids), not precomputed "
                                "embeddings")
            labels = ("a", "b") if len(responses) == 2 else ("responses",)
            vectors = embedding_inputs(self.name, self.dims_, prompts, dict(zip(labels, responses)))
            return self.feature_center_.vectors(*vectors) if self.feature_center_ is not None else vectors
        if self.uses_embeddings_:
            raise TypeError(f"{self.name}: this model was trained on embeddings; pass tensors, not text")
        if prompts is None:  # "no prompt features" is for a model fitted on embeddings
            raise TypeError(f"{self.name}: prompts=None; this model reads text: give a prompt per row (or one for all)")
        # one pair: plain strings, or one chat message each (a dict is one item: list(dict) would be its keys)
        responses = tuple([r] if isinstance(r, (str, dict)) else list(r) for r in responses)
        n = len(responses[0])
        prompts = [prompts] * n if isinstance(prompts, (str, dict)) else list(prompts)  # one prompt for every response
        if any(len(r) != n for r in responses) or len(prompts) != n:
            raise ValueError(f"{self.name}: prompts and responses must have the same length "
                             f"(got {len(prompts)} prompts and {', '.join(str(len(r)) for r in responses)} responses)")
        try:  # chat messages, as the rows and reward_function take them, read as their text
            columns = [[messages_to_text(t) for t in column] for column in (prompts, *responses)]
        except (TypeError, ValueError) as err:
            raise TypeError(f"{self.name}: {err}") from None
        return self.text_features(columns, cache=cache)

    def text_features(self, columns: list[list[str]], cache: bool = True) -> list[torch.Tensor]:
        """The network's inputs for equally long text columns: cached embeddings of the frozen backbone, or
        token ids where the backbone is tuned. ``cache=False`` reads the cache but adds nothing to it."""
        if self.tuned is not None:
            return [self.tuned.backbone.tokenize(column) for column in columns]
        vectors = self.cache.embed([t for column in columns for t in column], self.encoder, store=cache)
        # no rows: split(0) would give one part, not one per column
        vectors = list(vectors.split(len(columns[0]))) if columns[0] else [vectors] * len(columns)
        return self.feature_center_.vectors(*vectors) if self.feature_center_ is not None else vectors

    @torch.no_grad()
    def logits_features(self, features: PairFeatures, users: torch.Tensor) -> torch.Tensor:
        network = self.check_fitted()
        return self.finite(network.logits(features.prompt, features.chosen, features.rejected, users))

    def finite(self, values: torch.Tensor, what: str = "predictions") -> torch.Tensor:
        """``values``, refused where some are NaN or inf: finite weights so large that the forward pass overflows
        (a fit at too large an lr) would otherwise score as 0% accuracy, or be written as NaN."""
        if not (ok := torch.isfinite(values)).all():
            raise TrainingDiverged(f"{self.name}: {int((~ok).sum())} of {values.numel()} {what} are NaN or inf: the "
                                   f"weights overflow; refit with a " + self.lower_lr())
        return values

    def prefer_proba(self, prompts: Any, a: Any, b: Any, user: Any = None) -> torch.Tensor:
        """P(a ≻ b | prompt, user) for each row; ``user`` is an id, a UserVector, labelled pairs or None."""
        prompt, first, second = self._texts_to_features(prompts, a, b)
        users = self.user_matrix(user, first.shape[0])
        with torch.no_grad():
            return torch.sigmoid(self.finite(self.check_fitted().logits(prompt, first, second, users)))

    def pair_proba(self, pairs: Any, user: Any = None) -> torch.Tensor:
        """P(chosen ≻ rejected | prompt, user) for each row of ``pairs`` (anything ``fit`` reads: a file, rows, a
        DataFrame; text or embeddings, as the fit's): ``prefer_proba`` on rows instead of three columns. ``user``
        is one user for every row, or one per row; the rows' own ``user_id`` column is not read (None: the
        population model, with a warning where the rows name users the model knows; ``user=rows.column("user_id")``
        scores each row as its user, as ``pluralign predict`` does)."""
        if not isinstance(pairs, PairFeatures):
            pairs = read_preferences(pairs)
            if user is None and self.uses_user_ids and (known := set(pairs.column("user_id")) & set(self.user_ids_)):
                logging.getLogger("pluralign").warning(
                    "%s.pair_proba: %s names %d user(s) the model knows, but user=None scores every row with the "
                    "population model; pass user=rows.column('user_id') to score each row as its user",
                    self.name, pairs.source or "the rows", len(known))
        features = pairs if isinstance(pairs, PairFeatures) else self.featurize(pairs)
        users = self.user_matrix(user, len(features))
        return torch.sigmoid(self.logits_features(features, users))

    def score(self, prompts: Any, responses: Any, user: Any = None, cache: bool = True) -> torch.Tensor:
        """Scalar reward r(prompt, response | user) where the method defines one (``cache=False``: texts
        not met again, such as a policy's samples, are embedded without growing the embedding cache)."""
        prompt, response = self._texts_to_features(prompts, responses, cache=cache)
        users = self.user_matrix(user, response.shape[0])
        with torch.no_grad():
            return self.finite(self.check_fitted().reward(prompt, response, users), "rewards")

    # ---- persistence (pluralign.methods.run_files) ----------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """Write model.safetensors and config.json into ``directory``, each by a temporary name then a rename."""
        save_run(self, Path(directory))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "PreferenceModel":
        """A saved run; a damaged or mismatched folder is a one-line ValueError naming the file. The caller's torch
        generator is left as it was (the network is built at random, then its weights are read over it)."""
        with torch.random.fork_rng(devices=[]):
            return load_run(Path(directory), None if cls is PreferenceModel else cls)
