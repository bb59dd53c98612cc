"""Seeded torch model generators for the frontend tests (built inside the suite)."""

from __future__ import annotations

import torch

SEQ = 16
VOCAB = 1000


def tiny_llama(seed: int = 0) -> torch.nn.Module:
    """LlamaForCausalLM: hidden 256, 2 layers, 4 heads, 2 KV heads, vocab 1000, random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=VOCAB, intermediate_size=688, max_position_embeddings=64,
        use_cache=False, tie_word_embeddings=False,
    )
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config).eval()
    return model


class LogitsOnly(torch.nn.Module):
    """input_ids -> logits (no cache, no dict outputs): what gets exported."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          use_cache=False).logits


def token_ids(seed: int = 1, batch: int = 1, seq: int = SEQ) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (batch, seq), generator=g)


class MLP(torch.nn.Module):
    def __init__(self, k: int = 32, hidden: int = 64, n: int = 48, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc1 = torch.nn.Linear(k, hidden)
        self.fc2 = torch.nn.Linear(hidden, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def export_llama_onnx(path, dynamo: bool, dynamic: bool = False):
    """Export the tiny Llama to ONNX (`dynamic`: the sequence length is a symbolic dim).
    The classic exporter needs an attention mask input (transformers' packed-sequence check
    uses aten::diff, which it cannot export)."""
    import warnings

    model = LogitsOnly(tiny_llama())
    ids = token_ids()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {"input_ids": {1: torch.export.Dim("seq", min=2, max=64)}} if dynamic \
                else None
            torch.onnx.export(model, (ids,), str(path), dynamo=True, input_names=["input_ids"],
                              output_names=["logits"], verbose=False, dynamic_shapes=dims)
        else:
            torch.onnx.export(model, (ids, torch.ones_like(ids)), str(path), dynamo=False,
                              input_names=["input_ids", "attention_mask"],
                              output_names=["logits"], opset_version=17)
    return path
