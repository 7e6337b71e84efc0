"""A backbone that trains with the reward head: PAL's "Large" setting (Chen et al. 2024, §4), where the
preference model's text encoder is fine-tuned end to end instead of read from frozen, cached embeddings.

Only the top ``layers`` transformer layers train (in full, or through LoRA adapters as in VPL's LLM
experiments); everything below them stays frozen, so autograd records nothing there and a CPU can afford
it. Texts travel through the DataLoader as token ids padded with :data:`PAD` (no text in a batch, nothing
else changes in the training loop); each forward embeds only the batch's distinct texts, in chunks of
similar length so little compute goes to padding.

The frozen layers give a text the same hidden states every epoch (they run in eval mode: dropout only in
the trainable layers), so in training they run once per text: their output, the input of the first
trainable layer, is kept in memory up to ``prefix_cache_mb`` and later passes run only the trainable
layers on it. A backbone whose layers cannot be skipped that way (checked once against the full
forward) runs every layer, as with ``prefix_cache_mb=0``. Predictions always run the full forward.
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.backbones.lora import add_lora
from pluralign.backbones.text_encoder import POOLINGS, load_backbone, pool

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


class _Stop(Exception):
    """Raised by the capture hook once the frozen layers' output is in hand: nothing above them runs."""


class TunedBackbone(nn.Module):
    """``forward(ids [N, T]) -> [N, D]``: pooled (and L2-normalized) text vectors, the top ``layers`` layers
    trainable: in full, or through LoRA adapters of rank ``lora_rank`` (:mod:`pluralign.backbones.lora`)."""

    def __init__(self, model: str | None, layers: int, pooling: str = "mean", max_length: int = 256,
                 normalize: bool = True, chunk_size: int = 32, trust_remote_code: bool = False,
                 prefix_cache_mb: float = 2048.0, lora_rank: int = 0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.tokenizer, self.encoder = load_backbone(model, trust_remote_code)
        self.tokenizer.padding_side = "right"  # ids are trimmed on the right per chunk
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
        self.prefix_cache_mb = prefix_cache_mb
        self._prefix: dict[bytes, torch.Tensor] = {}  # token ids -> frozen layers' output [T, D]
        self._prefix_bytes = 0
        self._prefix_ok: bool | None = None  # whether skipping the frozen layers reproduces the full forward

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
        order = torch.argsort(lengths)
        # training only: predictions stay one full forward, independent of what was cached before
        use_cache = self.training and self.prefix_cache_mb > 0 and self._prefix_is_exact(unique[order[-1:]])
        parts = []
        for chunk in order.split(self.chunk_size):
            tokens = unique[chunk, : int(lengths[chunk].max().clamp_min(1))]
            mask = tokens != PAD
            hidden = self._top_layers(tokens, mask, self._frozen_states(tokens, mask)) if use_cache else \
                self.encoder(input_ids=tokens.clamp_min(0), attention_mask=mask.long()).last_hidden_state
            parts.append(pool(hidden, mask, self.pooling).float())
        vectors = torch.cat(parts)[torch.argsort(order)]
        if self.normalize:
            vectors = F.normalize(vectors, dim=-1)
        return vectors[inverse]

    # ---- the frozen layers' output, computed once per text ------------------------------------------
    def _run_below(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The input of the first trainable layer [N, T, D], in eval mode (frozen layers, no dropout)."""
        captured = []

        def capture(module, args, kwargs):
            captured.append(args[0] if args else kwargs["hidden_states"])
            raise _Stop

        handle = self.blocks[self.first_trainable].register_forward_pre_hook(capture, with_kwargs=True)
        try:
            with torch.no_grad():  # the frozen layers are in eval mode in training too (see ``train``)
                self.encoder.eval()(input_ids=tokens.clamp_min(0), attention_mask=mask.long())
        except _Stop:
            pass
        finally:
            handle.remove()
            self.train(self.training)
        return captured[0]

    def _frozen_states(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Cached frozen-layer states of each row, zero on padding; rows not cached yet are computed (and
        kept while the cache is under its size limit)."""
        keys = [row[row != PAD].numpy().tobytes() for row in tokens.cpu()]  # one copy off the device
        missing = [i for i, key in enumerate(keys) if key not in self._prefix]
        fresh = {}
        if missing:
            computed = self._run_below(tokens[missing], mask[missing])
            for j, i in enumerate(missing):
                fresh[keys[i]] = state = computed[j, : int(mask[i].sum())].clone()
                if self._prefix_bytes + state.nbytes <= self.prefix_cache_mb * 2**20:
                    self._prefix[keys[i]] = state
                    self._prefix_bytes += state.nbytes
        rows = [fresh[k] if k in fresh else self._prefix[k] for k in keys]
        # zero-padded to the chunk's width, which is its longest row's length
        return nn.utils.rnn.pad_sequence(rows, batch_first=True).to(tokens.device)

    def _top_layers(self, tokens: torch.Tensor, mask: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """The backbone's own forward with the frozen layers skipped and ``states`` fed to the first trainable
        one (masks, position handling and the final norm stay the model's)."""
        def feed(module, args, kwargs):
            return ((states, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": states})

        frozen = [self.blocks[i] for i in range(self.first_trainable)]
        handle = self.blocks[self.first_trainable].register_forward_pre_hook(feed, with_kwargs=True)
        try:
            for i in range(self.first_trainable):
                self.blocks[i] = _Skip()
            return self.encoder(input_ids=tokens.clamp_min(0), attention_mask=mask.long()).last_hidden_state
        finally:
            for i, block in enumerate(frozen):
                self.blocks[i] = block
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
                    full = self.encoder(input_ids=tokens.clamp_min(0), attention_mask=mask.long()).last_hidden_state
                    skipped = self._top_layers(tokens, mask, self._run_below(tokens, mask))
                self._prefix_ok = bool(torch.allclose(full, skipped, atol=1e-4, rtol=1e-3))
            except Exception:  # a layer stack this hook scheme does not fit: run every layer
                self._prefix_ok = False
            finally:
                self.train(was_training)
            if not self._prefix_ok:
                log.info("%s: its layers cannot be skipped, so the frozen ones run every step (slower, same result)",
                         type(self.encoder).__name__)
        return self._prefix_ok

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
        return super()._apply(fn, recurse)
