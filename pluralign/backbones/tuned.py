"""A backbone that trains with the reward head: PAL's "Large" setting (Chen et al. 2024, §4), where the
preference model's text encoder is fine-tuned end to end instead of read from frozen, cached embeddings.

Only the top ``layers`` transformer layers train (in full, or through LoRA adapters as in VPL's LLM
experiments); everything below them stays frozen, so autograd records nothing there and a CPU can afford
it. Texts travel through the DataLoader as token ids padded with :data:`PAD` (no text in a batch, nothing
else changes in the training loop); each forward embeds only the batch's distinct texts, in chunks of
similar length so little compute goes to padding. ``pooling="layer-mean"`` averages the token means of every
layer, the frozen ones included, as the cached embeddings do (:func:`pluralign.backbones.text_encoder.pool_layers`).

The frozen layers give a text the same hidden states every epoch (they run in eval mode: dropout only in
the trainable layers), so in training they run once per text: their output, the input of the first
trainable layer, is kept in memory up to ``prefix_cache_mb`` and later passes run only the trainable
layers on it. A backbone whose layers cannot be skipped that way (checked once against the full
forward) runs every layer, as with ``prefix_cache_mb=0``.

Predictions (eval mode, no gradient) run the full forward in batches of one fixed shape per padded length
(:func:`pluralign.backbones.text_encoder.padded_length`, ``chunk_size`` rows, the last filled with repeats), as
the frozen encoder does: a text's vector then depends on the text alone, not on what is embedded beside it or
before it. So it is kept per text (within the same memory limit) until any weight changes, which judging many
users who share texts needs: each user's call embeds only the texts no call has embedded yet.
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.backbones.lora import add_lora
from pluralign.backbones.text_encoder import POOLINGS, load_backbone, padded_length, pool, pool_layers, pool_output

log = logging.getLogger(__name__)

PAD = -1  # no tokenizer has a negative id: padding is recognizable without a separate mask tensor


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a ``transformers`` model (BERT's encoder.layer, GPT-2's h, ...)."""
    n = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"{type(model).__name__}: cannot find its {n} transformer layers to fine-tune")


class _Skip(nn.Module):
    """A frozen layer whose output is already cached: hands its input on unchanged."""

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return hidden_states


def _block_output(output) -> torch.Tensor:
    """A transformer layer's token states, whether the layer returns a tensor or a tuple led by one."""
    return output[0] if isinstance(output, tuple) else output


class _Stop(Exception):
    """Raised by the capture hook once the frozen layers' output is in hand: nothing above them runs."""


def frozen_entries(module: nn.Module) -> dict[str, torch.Tensor]:
    """The state entries fine-tuning never changes of every tuned backbone inside ``module`` (anything with a
    ``frozen_state``: the backbone below its trained layers, or beside its LoRA adapters), by ``module``'s state
    names; none for a module on cached features. What saved runs and checkpoints leave out."""
    return {f"{prefix}.{name}": tensor for prefix, inner in module.named_modules()
            if prefix and callable(getattr(inner, "frozen_state", None))
            for name, tensor in inner.frozen_state().items()}


class TunedBackbone(nn.Module):
    """``forward(ids [N, T]) -> [N, D]``: pooled (and L2-normalized) text vectors, the top ``layers`` layers
    trainable: in full, or through LoRA adapters of rank ``lora_rank`` (:mod:`pluralign.backbones.lora`)."""

    def __init__(self, model: str | None, layers: int, pooling: str = "mean", max_length: int = 256,
                 normalize: bool = True, chunk_size: int = 32, trust_remote_code: bool = False,
                 prefix_cache_mb: float = 2048.0, lora_rank: int = 0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if pooling == "input-mean":
            raise ValueError("pooling='input-mean' reads the embedding layer alone: no transformer layer to fine-tune")
        self.tokenizer, self.encoder = load_backbone(model, trust_remote_code, max_length)  # right-padded
        # a plain reference, not a submodule: the layers' weights stay under ``encoder`` in the state dict
        object.__setattr__(self, "blocks", transformer_layers(self.encoder))
        if not 1 <= layers <= len(self.blocks):
            raise ValueError(f"finetune_layers={layers}: the backbone has {len(self.blocks)} layers")
        self.encoder.requires_grad_(False)
        self.first_trainable = len(self.blocks) - layers
        if lora_rank:  # adapters train, the layers' own weights stay as pretrained
            if not add_lora(self.blocks[self.first_trainable:], lora_rank):
                raise ValueError(f"finetune_lora_rank={lora_rank}: the top layers of {type(self.encoder).__name__} "
                                 "have no nn.Linear maps to adapt")
        else:
            self.blocks[self.first_trainable:].requires_grad_(True)
        self.pooling, self.max_length, self.normalize, self.chunk_size = pooling, max_length, normalize, chunk_size
        self.lora_rank = lora_rank
        self.prefix_cache_mb = prefix_cache_mb
        # token ids -> the frozen layers' output [T, D] and, for layer-mean, their token means [first_trainable, D]
        self._prefix: dict[bytes, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._prefix_bytes = 0
        self._prefix_ok: bool | None = None  # whether skipping the frozen layers reproduces the full forward
        # token ids -> a prediction's pooled vector, valid while every weight keeps its version (_weights_version)
        self._predicted: dict[bytes, torch.Tensor] = {}
        self._predicted_version: tuple[int, ...] | None = None

    @property
    def dim(self) -> int:
        return int(self.encoder.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids [N, T], right-padded with PAD."""
        if len(texts) == 0:
            return torch.zeros(0, 1, dtype=torch.long)
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return batch["input_ids"].masked_fill(batch["attention_mask"] == 0, PAD)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.is_floating_point():
            raise TypeError("a fine-tuned backbone reads text (token ids), not precomputed embeddings")
        if ids.shape[0] == 0:
            return torch.zeros(0, self.dim, device=ids.device)
        unique, inverse = torch.unique(ids, dim=0, return_inverse=True)
        lengths = (unique != PAD).sum(1)
        if not self.training and not torch.is_grad_enabled():
            vectors = self._predict(unique, lengths)
            return (F.normalize(vectors, dim=-1) if self.normalize else vectors)[inverse]
        order = torch.argsort(lengths)
        # training (or gradients through an eval-mode forward): the frozen layers' cache serves training only
        use_cache = self.training and self.prefix_cache_mb > 0 and self._prefix_is_exact(unique[order[-1:]])
        parts = []
        for chunk in order.split(self.chunk_size):
            tokens = unique[chunk, : int(lengths[chunk].max().clamp_min(1))]
            parts.append(self._pooled(tokens, tokens != PAD, use_cache))
        vectors = torch.cat(parts)[torch.argsort(order)]
        if self.normalize:
            vectors = F.normalize(vectors, dim=-1)
        return vectors[inverse]

    @property
    def all_layers(self) -> bool:
        return self.pooling == "layer-mean"

    def _pooled(self, tokens: torch.Tensor, mask: torch.Tensor, use_cache: bool) -> torch.Tensor:
        """[N, D] unnormalized: from the frozen layers' cached output and the trainable layers, or the full forward."""
        if use_cache:
            states, below = self._frozen_states(tokens, mask)
            return pool_layers(self._top_layers(tokens, mask, states), mask, self.pooling, below).float()
        output = self.encoder(input_ids=tokens.clamp_min(0), attention_mask=mask.long(),
                              output_hidden_states=self.all_layers)
        return pool_output(output, mask, self.pooling).float()

    # ---- predictions: one fixed shape per padded length, kept per text -------------------------------
    def _weights_version(self) -> tuple[int, ...]:
        """Changes whenever any weight does: an optimizer step, ``load_state_dict`` and any in-place edit bump
        a tensor's version counter."""
        return tuple(p._version for p in self.encoder.parameters())

    def _predict(self, unique: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[N, D] unnormalized vectors of distinct token rows, from the kept ones or fixed-shape batches."""
        version = self._weights_version()
        if version != self._predicted_version:
            self._predicted.clear()
            self._predicted_version = version
        keys = [row[row != PAD].numpy().tobytes() for row in unique.cpu()]
        missing: dict[int, list[int]] = {}  # padded length -> rows not kept yet
        for i, (key, n_tokens) in enumerate(zip(keys, lengths.tolist())):  # one copy off the device
            if key not in self._predicted:
                missing.setdefault(padded_length(n_tokens, self.max_length), []).append(i)
        fresh: dict[bytes, torch.Tensor] = {}
        for width, rows in missing.items():
            for start in range(0, len(rows), self.chunk_size):
                chunk = rows[start : start + self.chunk_size]
                filled = chunk + chunk[:1] * (self.chunk_size - len(chunk))
                tokens = torch.full((self.chunk_size, width), PAD, dtype=unique.dtype, device=unique.device)
                n = min(width, unique.shape[1])  # a row's tokens all lie within its padded length
                tokens[:, :n] = unique[filled, :n]
                vectors = self._pooled(tokens, tokens != PAD, use_cache=False)
                fresh.update((keys[i], vectors[j].clone()) for j, i in enumerate(chunk))
        room = int(self.prefix_cache_mb * 2**20 // (4 * self.dim)) - len(self._predicted)  # float32 vectors
        if not torch.is_inference_mode_enabled():  # inference tensors could not enter a later gradient fit
            self._predicted.update(list(fresh.items())[: max(room, 0)])
        return torch.stack([fresh[key] if key in fresh else self._predicted[key] for key in keys])

    # ---- the frozen layers' output, computed once per text ------------------------------------------
    def _run_below(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The input of the first trainable layer [N, T, D], in eval mode (frozen layers, no dropout), and for
        ``layer-mean`` the token means of the frozen layers' outputs [N, first_trainable, D] (else None)."""
        captured, below = [], []

        def capture(module, args, kwargs):
            captured.append(args[0] if args else kwargs["hidden_states"])
            raise _Stop

        def keep_mean(module, args, output):
            below.append(pool(_block_output(output), mask, "mean"))

        handles = [self.blocks[self.first_trainable].register_forward_pre_hook(capture, with_kwargs=True)]
        if self.all_layers:
            handles += [self.blocks[i].register_forward_hook(keep_mean) for i in range(self.first_trainable)]
        try:
            with torch.no_grad():  # the frozen layers are in eval mode in training too (see ``train``)
                self.encoder.eval()(input_ids=tokens.clamp_min(0), attention_mask=mask.long())
        except _Stop:
            pass
        finally:
            for handle in handles:
                handle.remove()
            self.train(self.training)
        return captured[0], torch.stack(below, 1) if self.all_layers else None

    def _frozen_states(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Cached frozen-layer states of each row, zero on padding, and their token means where ``layer-mean``
        needs them; rows not cached yet are computed (and kept while the cache is under its size limit)."""
        keys = [row[row != PAD].numpy().tobytes() for row in tokens.cpu()]  # one copy off the device
        missing = [i for i, key in enumerate(keys) if key not in self._prefix]
        fresh = {}
        if missing:
            computed, below = self._run_below(tokens[missing], mask[missing])
            for j, i in enumerate(missing):
                state = computed[j, : int(mask[i].sum())].clone()
                fresh[keys[i]] = entry = (state, below[j].clone() if below is not None else None)
                size = state.nbytes + (entry[1].nbytes if below is not None else 0)
                if self._prefix_bytes + size <= self.prefix_cache_mb * 2**20:
                    self._prefix[keys[i]] = entry
                    self._prefix_bytes += size
        rows = [fresh[k] if k in fresh else self._prefix[k] for k in keys]
        # zero-padded to the chunk's width, which is its longest row's length
        states = nn.utils.rnn.pad_sequence([state for state, _ in rows], batch_first=True).to(tokens.device)
        return states, torch.stack([means for _, means in rows]).to(tokens.device) if self.all_layers else None

    def _top_layers(self, tokens: torch.Tensor, mask: torch.Tensor, states: torch.Tensor) -> list[torch.Tensor]:
        """The backbone's own forward with the frozen layers skipped and ``states`` fed to the first trainable
        one (masks, position handling and the final norm stay the model's): the token states of every trainable
        layer for ``layer-mean``, else of the last layer alone."""
        def feed(module, args, kwargs):
            return ((states, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": states})

        frozen = [self.blocks[i] for i in range(self.first_trainable)]
        outputs: list[torch.Tensor] = []  # the trainable layers' below the last (hooks: skipped layers leave
        # gaps in a model's own ``hidden_states``); the last one is ``last_hidden_state``, as in ``hidden_states``
        handles = [self.blocks[self.first_trainable].register_forward_pre_hook(feed, with_kwargs=True)]
        if self.all_layers:
            def keep(module, args, output):
                outputs.append(_block_output(output))

            handles += [self.blocks[i].register_forward_hook(keep) for i in range(self.first_trainable, len(self.blocks) - 1)]
        try:
            for i in range(self.first_trainable):
                self.blocks[i] = _Skip()
            last = self.encoder(input_ids=tokens.clamp_min(0), attention_mask=mask.long()).last_hidden_state
            return [*outputs, last]
        finally:
            for i, block in enumerate(frozen):
                self.blocks[i] = block
            for handle in handles:
                handle.remove()

    def _prefix_is_exact(self, sample: torch.Tensor) -> bool:
        """Check once, on one text, that the cached path gives the full forward's output (eval mode)."""
        if self._prefix_ok is None:
            tokens = sample[:, : int((sample != PAD).sum().clamp_min(1))]
            mask = tokens != PAD
            was_training = self.training
            self.eval()
            try:
                with torch.no_grad():
                    full = self._pooled(tokens, mask, use_cache=False)
                    states, below = self._run_below(tokens, mask)
                    skipped = pool_layers(self._top_layers(tokens, mask, states), mask, self.pooling, below)
                self._prefix_ok = bool(torch.allclose(full, skipped, atol=1e-4, rtol=1e-3))
            except Exception:  # a layer stack this hook scheme does not fit: run every layer
                self._prefix_ok = False
            finally:
                self.train(was_training)
            if not self._prefix_ok:
                log.info("%s: its layers cannot be skipped, so the frozen ones run every step (slower, same result)",
                         type(self.encoder).__name__)
        return self._prefix_ok

    def frozen_state(self) -> dict[str, torch.Tensor]:
        """The state entries training never changes, by name: every weight and buffer of the backbone but the
        top layers' (in full), or but the LoRA adapters. A saved run leaves them out and reloads them from the
        backbone's own files (:mod:`pluralign.methods.run_files`)."""
        if self.lora_rank:
            trained = {id(p) for block in self.blocks[self.first_trainable:] for name, p in block.named_parameters()
                       if name.rsplit(".", 1)[-1] in ("lora_a", "lora_b")}
        else:
            trained = {id(p) for p in self.blocks[self.first_trainable:].parameters()}
        return {name: tensor for name, tensor in self.state_dict(keep_vars=True).items() if id(tensor) not in trained}

    def train(self, mode: bool = True) -> "TunedBackbone":
        """Dropout only in the trainable layers: the frozen ones act as the fixed feature extractor they are
        (as for cached embeddings), which is also what lets their output be cached."""
        super().train(mode)
        self.encoder.eval()
        for block in self.blocks[self.first_trainable:]:
            block.train(mode)
        return self

    def _apply(self, fn, recurse=True):
        self._prefix.clear()  # a move to another device or dtype: cached states would no longer match
        self._prefix_bytes = 0
        self._predicted.clear()
        return super()._apply(fn, recurse)
