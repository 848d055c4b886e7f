"""all-MiniLM-L6-v2 sentence embeddings by a forward pass in numpy (no torch).

The model is a 6-layer BERT (hidden 384, 12 heads, intermediate 1536, GELU with erf); the
sentence vector is the mean of the last layer over the attention mask, L2-normalised, as
sentence-transformers' Transformer -> Pooling(mean) -> Normalize pipeline computes it, with
its max_seq_length of 256 tokens. Weights are read with `safetensors` and text is tokenized
with the model's own `tokenizer.json` by `tokenizers`; both are needed only to build datasets
(requirements-datasets.txt), never by the harness or its images.

Batches hold sentences of similar length (sorted by token count), so little work goes into
padding; the batches, and so every matrix product's shape, depend only on the sentences, which
keeps two runs on one machine bit-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.special import erf
from threadpoolctl import threadpool_limits

from ..errors import UserError
from ..progress import bar as progress_bar

MAX_TOKENS = 256
DIMENSION = 384
_HEADS = 12
_LAYERS = 6
_EPS = 1e-12
_BATCH_TOKENS = 4096  # tokens per batch (padded), about 50 glosses


class MiniLM:
    """The encoder, loaded from a directory with model.safetensors and tokenizer.json."""

    def __init__(self, model_dir: Path | str):
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as error:
            raise UserError(f"building this dataset needs {error.name}: run "
                            f"`.venv/bin/pip install -r requirements-datasets.txt`") from None
        model_dir = Path(model_dir)
        self.weights = load_file(str(model_dir / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def tokenize(self, sentences: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64)
                for e in self.tokenizer.encode_batch(list(sentences))]

    def encode(self, sentences: Sequence[str], progress: bool = True,
               desc: str = "embedding") -> np.ndarray:
        """float32 (len(sentences), 384) unit vectors, in the order given."""
        ids = self.tokenize(sentences)
        lengths = np.array([len(t) for t in ids], dtype=np.int64)
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(ids), DIMENSION), dtype=np.float32)
        with progress_bar(progress, total=len(ids), desc=desc, unit="sentence") as bar, \
                threadpool_limits(None, user_api="blas"):
            for batch in _batches(order, lengths):
                out[batch] = self._forward([ids[i] for i in batch])
                bar.update(len(batch))
        return out

    def _forward(self, batch: list[np.ndarray]) -> np.ndarray:
        w = self.weights
        n, length = len(batch), max(len(t) for t in batch)
        tokens = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, t in enumerate(batch):
            tokens[row, :len(t)] = t
            mask[row, :len(t)] = 1.0
        x = (w["embeddings.word_embeddings.weight"][tokens]
             + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        # Padded keys get the most negative float32, as transformers does: exp() makes it 0.
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in range(_LAYERS):
            x = self._layer(x, bias, f"encoder.layer.{layer}.")
        pooled = np.einsum("bld,bl->bd", x, mask) / mask.sum(axis=1, keepdims=True)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def _layer(self, x: np.ndarray, bias: np.ndarray, p: str) -> np.ndarray:
        w = self.weights
        n, length, d = x.shape
        head = d // _HEADS

        def dense(h: np.ndarray, name: str) -> np.ndarray:
            # One 2-D product: numpy does not hand a 3-D @ 2-D product to BLAS in one call.
            flat = h.reshape(-1, h.shape[-1]) @ w[f"{p}{name}.weight"].T + w[f"{p}{name}.bias"]
            return flat.reshape(*h.shape[:-1], -1)

        def heads(h: np.ndarray) -> np.ndarray:
            # Contiguous per head, so the stacked products below go to BLAS.
            return np.ascontiguousarray(h.reshape(n, length, _HEADS, head).transpose(0, 2, 1, 3))

        q = heads(dense(x, "attention.self.query"))
        k = heads(dense(x, "attention.self.key"))
        v = heads(dense(x, "attention.self.value"))
        scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2))
        scores *= np.float32(1.0 / np.sqrt(head))
        scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, d)
        x = _layer_norm(x + dense(context, "attention.output.dense"),
                        w[f"{p}attention.output.LayerNorm.weight"],
                        w[f"{p}attention.output.LayerNorm.bias"])
        hidden = dense(x, "intermediate.dense")
        hidden = 0.5 * hidden * (1.0 + erf(hidden / np.float32(np.sqrt(2.0))))
        return _layer_norm(x + dense(hidden.astype(np.float32), "output.dense"),
                           w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"])


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return (centred / np.sqrt(variance + np.float32(_EPS)) * gamma + beta).astype(np.float32)


def _batches(order: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Consecutive runs of `order` whose padded size stays within _BATCH_TOKENS."""
    batches, start = [], 0
    for end in range(1, len(order) + 1):
        if end == len(order) or (end - start + 1) * lengths[order[end]] > _BATCH_TOKENS:
            batches.append(order[start:end])
            start = end
    return batches
