"""Where a generating model comes from: a GGUF file, a Hugging Face directory (config.json +
*.safetensors [+ tokenizer.json]) or a transformers `PreTrainedModel` object.

Each gives the same `ModelSource`: the transformers-style config, the tensors under
transformers' parameter names (float arrays, or `QuantizedWeight`s holding a GGUF file's exact
codes), the tokenizer when the source has one, the chat template, and a content digest that
keys the compile cache.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lutc.runtime.errors import LutcError, first_line

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
              "I32": np.int32, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_MAX_HEADER = 100 * 2**20


@dataclass
class ModelSource:
    name: str                       # for messages and the generated C's title (never in C)
    config: Any                     # a transformers config object or a config.json dict
    tensors: dict                   # name -> np.ndarray | QuantizedWeight
    digest: str                     # content hash of the weights and config
    tokenizer: Any = None           # a `tokenizers.Tokenizer`, or None
    chat_template: str | None = None
    special_tokens: dict = field(default_factory=dict)  # bos/eos strings for the template
    tokenizer_problem: str = ""     # why a file's tokenizer could not be built (messages)
    origins: dict = field(default_factory=dict)  # tensor name -> its name in the file (GGUF)

    def explain(self, err: LutcError) -> LutcError:
        """`err` (about this source's tensors, by their Hugging Face names) naming the model
        file and each tensor's own name in it: 'tensor 'blk.3.ffn_up.weight'
        (model.layers.3.mlp.up_proj.weight)'."""
        message = str(err)
        for name in sorted(self.origins, key=len, reverse=True):
            if f"'{name}'" in message and self.origins[name] != name:
                message = message.replace(f"'{name}'", f"'{self.origins[name]}' ({name})")
        if not message.startswith(f"{self.name}:"):
            message = f"{self.name}: {message}"
        return LutcError(message)


def regular_file(path: Path, what: str = "model file") -> Path:
    """`path` if it is a regular file (a symlink to one counts), else LutcError naming it: a
    FIFO, a device (/dev/zero), a directory or a dangling link would hang or fail later."""
    try:
        st = path.stat()
    except OSError as err:
        raise LutcError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise LutcError(f"{path}: the {what} is not a regular file")
    return path


def _hash_file(path: Path, h) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file as float32 (floats) or their integer dtype.

    The safetensors package's numpy loader cannot represent BF16, the dtype most checkpoints
    use, so the (documented, 8-byte length + JSON header + raw little-endian data) format is read
    here and BF16 is widened exactly to float32. Raises LutcError on a malformed file."""
    if regular_file(path, "safetensors file").stat().st_size < 8:
        raise LutcError(f"{path.name}: not a safetensors file (too short)")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > min(_MAX_HEADER, data.size - 8):
        raise LutcError(f"{path.name}: safetensors header length {n} is out of range")
    try:
        header = json.loads(bytes(data[8:8 + n]))
    except ValueError as err:
        raise LutcError(f"{path.name}: safetensors header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise LutcError(f"{path.name}: safetensors header is not a JSON object")
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            if not (isinstance(dtype, str) and isinstance(shape, list)
                    and all(type(v) is int and v >= 0 for v in [*shape, begin, end])):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise LutcError(f"{path.name}: tensor '{name}' has a malformed header entry (dtype, "
                            f"shape and data_offsets must be a string and non-negative "
                            f"integers)") from None
        count = int(np.prod(shape, dtype=np.int64))
        width = 2 if dtype == "BF16" else np.dtype(_ST_DTYPES.get(dtype, np.uint8)).itemsize
        if dtype not in _ST_DTYPES and dtype != "BF16":
            raise LutcError(f"{path.name}: tensor '{name}' has dtype {dtype}, which lutc cannot read")
        if not (0 <= begin <= end <= body.size) or end - begin != count * width:
            raise LutcError(f"{path.name}: tensor '{name}' data range [{begin}, {end}) does not "
                            f"match its shape {shape} and dtype {dtype} or the file size")
        raw = body[begin:end]
        if dtype == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = raw.view(_ST_DTYPES[dtype])
        arr = arr.reshape(shape)
        out[name] = arr.astype(np.float32) if arr.dtype.kind == "f" else np.array(arr)
    return out


def from_hf_directory(directory: Path) -> ModelSource:
    config_path = directory / "config.json"
    if not config_path.exists():
        raise LutcError(f"'{directory}' has no config.json: not a Hugging Face model directory")
    try:
        config = json.loads(regular_file(config_path, "config").read_text())
    except (ValueError, OSError) as err:
        raise LutcError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise LutcError(f"{config_path}: not a JSON object")
    files = [regular_file(f, "safetensors file") for f in sorted(directory.glob("*.safetensors"))]
    if not files:
        raise LutcError(f"'{directory}' holds no *.safetensors weights")
    h = hashlib.blake2b(config_path.read_bytes(), digest_size=16)
    tensors: dict = {}
    for f in files:
        _hash_file(f, h)
        tensors.update(read_safetensors(f))
    tokenizer = chat_template = None
    special: dict = {}
    if (directory / "tokenizer.json").exists():
        from tokenizers import Tokenizer

        tok_path = regular_file(directory / "tokenizer.json", "tokenizer")
        try:
            tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as err:  # the tokenizers library raises bare Exceptions
            raise LutcError(f"{tok_path}: not a valid tokenizer.json "
                            f"({first_line(str(err)) or type(err).__name__})") from None
    tok_cfg = directory / "tokenizer_config.json"
    if tok_cfg.is_file():
        try:
            tc = json.loads(tok_cfg.read_text())
        except (ValueError, OSError):
            tc = {}
        tc = tc if isinstance(tc, dict) else {}
        chat_template = tc.get("chat_template") if isinstance(tc.get("chat_template"), str) else None
        for key in ("bos_token", "eos_token"):
            tok = tc.get(key)
            tok = tok.get("content") if isinstance(tok, dict) else tok
            special[key] = tok if isinstance(tok, str) else None
    template_file = directory / "chat_template.jinja"  # transformers >= 4.5x saves it apart
    if chat_template is None and template_file.is_file():
        try:
            chat_template = template_file.read_text()
        except (ValueError, OSError):
            chat_template = None
    return ModelSource(directory.name, config, tensors, h.hexdigest(), tokenizer, chat_template,
                       special)


def from_gguf(path: Path) -> ModelSource:
    from lutc.compiler.frontends.gguf import read_gguf

    g = read_gguf(regular_file(path, "GGUF file"))
    h = hashlib.blake2b(digest_size=16)
    _hash_file(path, h)
    problem = ""
    try:
        tokenizer = g.tokenizer()
    except LutcError as err:
        tokenizer, problem = None, str(err)
    return ModelSource(path.name, g.hf_config, g.tensors, h.hexdigest(), tokenizer,
                       g.chat_template, getattr(g, "special_tokens", {}) or {}, problem,
                       g.origins)


def from_pretrained_model(model) -> ModelSource:
    """A transformers PreTrainedModel already in memory (float weights, taken as they are)."""
    h = hashlib.blake2b(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode(),
                        digest_size=16)
    tensors = {}
    for name, t in model.state_dict().items():
        arr = t.detach().float().cpu().numpy()
        h.update(name.encode())
        h.update(arr.tobytes())
        tensors[name] = arr
    return ModelSource(type(model).__name__, model.config, tensors, h.hexdigest())


def load_source(model) -> ModelSource:
    """A ModelSource from a path (.gguf file or HF directory) or a PreTrainedModel.

    Raises LutcError for anything else, naming it."""
    if isinstance(model, ModelSource):
        return model
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise LutcError(f"'{path}' does not exist")
        if path.is_dir():
            return from_hf_directory(path)
        if path.suffix.lower() == ".gguf":
            return from_gguf(path)
        raise LutcError(f"'{path}' is neither a .gguf file nor a Hugging Face model directory "
                        f"(for .onnx/.pt2 use `lutc compile`)")
    if hasattr(model, "config") and hasattr(model, "state_dict") and \
            getattr(model.config, "model_type", None):
        return from_pretrained_model(model)
    raise LutcError(f"cannot generate with a {type(model).__name__}: give a .gguf file, a "
                    f"Hugging Face directory or a transformers PreTrainedModel")
