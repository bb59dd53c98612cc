"""GGUF (llama.cpp) frontend: read a GGUF file into transformers-named tensors whose low-bit
weights keep their exact integer codes (no dequantize/requantize round trip)."""

from .model import GGUFModel, read_gguf
from lutc.compiler.frontends.quantize import QuantizedWeight

__all__ = ["GGUFModel", "QuantizedWeight", "read_gguf"]
