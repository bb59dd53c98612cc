"""read_gguf: a llama.cpp GGUF file as a transformers-shaped model with exact low-bit weights.

    m = read_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
    m.hf_config["num_hidden_layers"]                        # 30
    w = m.tensors["model.layers.0.self_attn.q_proj.weight"] # QuantizedWeight, codes [576, 576]
    m.tokenizer().encode("Hello").ids
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lutc.runtime.errors import LutcError

from .architecture import LAYER_RE, ROPE_TENSORS, Architecture
from .container import GGUFContainer
from .ggml_blocks import decode_tensor
from lutc.compiler.frontends.quantize import QuantizedWeight
from .tokenizer import build_tokenizer


@dataclass
class GGUFModel:
    path: Path
    architecture: str
    hf_config: dict
    tensors: dict[str, np.ndarray | QuantizedWeight]
    chat_template: str | None
    metadata: dict = field(default_factory=dict, repr=False)  # the tokenizer.* keys, for tokenizer()
    origins: dict = field(default_factory=dict, repr=False)  # HF tensor name -> GGUF tensor name

    def tokenizer(self):
        """A `tokenizers.Tokenizer` built from the file's metadata (no torch, no network)."""
        return build_tokenizer(self.metadata, self.architecture, self.path)


def read_gguf(path) -> GGUFModel:
    path = Path(path)
    container = GGUFContainer(path)
    try:
        return _read(container)
    finally:
        container.close()


def _read(container: GGUFContainer) -> GGUFModel:
    path, metadata, infos = container.path, container.metadata, container.tensors
    arch = Architecture(metadata, set(infos), path)
    embd, q0 = infos.get("token_embd.weight"), infos.get("blk.0.attn_q.weight")
    config = arch.hf_config(vocab_rows=embd.shape[0] if embd is not None and len(embd.shape) == 2
                            else None,
                            q_rows=q0.shape[0] if q0 is not None and len(q0.shape) == 2 else None)
    _check_required(container, config)

    tensors: dict[str, np.ndarray | QuantizedWeight] = {}
    origins: dict[str, str] = {}
    rope_factors = {}
    for name, info in infos.items():
        value = decode_tensor(container.raw(info), info.ggml_type, info.shape,
                              f"{path}: tensor '{name}'")
        if name in ROPE_TENSORS:
            rope_factors[name] = np.asarray(value, np.float32).reshape(-1)
            continue
        for hf_name, hf_value in arch.hf_tensors(name, value, config):
            tensors[hf_name] = hf_value
            origins[hf_name] = name
        del value  # the split/permuted copies replace it: one copy of each weight stays alive
    arch.add_rope_factors(config, rope_factors)

    template = metadata.get("tokenizer.chat_template")
    keep = {k: v for k, v in metadata.items() if k.startswith("tokenizer.ggml.")}
    return GGUFModel(path=path, architecture=arch.name, hf_config=config, tensors=tensors,
                     chat_template=template if isinstance(template, str) else None, metadata=keep,
                     origins=origins)


def _check_required(container: GGUFContainer, config: dict) -> None:
    """The tensors every supported decoder needs, with the shapes the metadata implies."""
    infos, path = container.tensors, container.path
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    if not 0 < layers <= len(infos):
        raise LutcError(f"{path}: metadata '{config['model_type']}.block_count' = {layers} does not "
                        f"fit the file's {len(infos)} tensors")
    expected = {"token_embd.weight": (config["vocab_size"], hidden), "output_norm.weight": (hidden,)}
    for i in range(layers):
        expected[f"blk.{i}.attn_norm.weight"] = (hidden,)
        expected[f"blk.{i}.ffn_down.weight"] = (hidden, config["intermediate_size"])
    for name in infos:  # a layer the metadata does not count would be read and never run
        m = LAYER_RE.match(name)
        if m and int(m.group(1)) >= layers:
            raise LutcError(f"{path}: tensor '{name}' belongs to layer {m.group(1)}, but metadata "
                            f"'{config['model_type']}.block_count' = {layers} (layers 0..{layers - 1})")
    for name, shape in expected.items():
        if name not in infos:
            raise LutcError(f"{path}: missing tensor '{name}'")
        if infos[name].shape != shape:
            raise LutcError(f"{path}: tensor '{name}' has shape {list(infos[name].shape)}, but the "
                            f"metadata implies {list(shape)}")
