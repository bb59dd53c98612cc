"""`lutc.LLM`: compile a causal language model once, then generate, score and measure it.

    llm = lutc.LLM("SmolLM2-135M-Instruct.Q4_1.gguf", max_context=1024)
    for piece in llm.generate("What is the capital of France?", chat=True, stream=True):
        print(piece, end="")
    llm.logits([1, 2, 3])            # f32 [3, vocab]
    llm.perplexity(text, context=512)

One compiled chunk function (decoder_graph.py) serves prefill and decode; the KV cache is a
numpy array owned by this object, written in place by the C code. Compiled models are cached
by content (weights, config, options, lutc's own sources) under `$LUTC_CACHE` (default
`~/.cache/lutc`), so a second `LLM` on the same model loads in about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lutc.compiler.llm.config import KV_CACHE_DTYPES, DecoderConfig
from lutc.compiler.llm.model_source import ModelSource, load_source
from lutc.compiler.llm.sampling import check_sampling, next_token
from lutc.compiler.llm.value_checks import is_integer
from lutc.runtime.errors import LutcError

# Rows per call of the compiled function. 128, not 32 (2026-12-06, SmolLM2 Q4_1 on the 2-core
# AMX Xeon VM, interleaved medians): prefill 128 / 512 tokens 642 / 559 -> 740 / 647 tok/s on
# 1 thread, 942 / 862 -> 1230 / 1123 on 2 (each weight block unpacked once per 128 rows instead
# of 32, 8 AMX row tiles per block); 256 was no faster; decode (one row per call) unchanged.
# Cost: the logits buffer holds chunk x vocab f32 (25 MB for SmolLM2).
DEFAULT_CHUNK = 128
DEFAULT_MAX_CONTEXT = 2048


def _cache_root() -> Path:
    return Path(os.environ.get("LUTC_CACHE") or Path.home() / ".cache" / "lutc") / "models"


def _lutc_fingerprint() -> str:
    """A hash of lutc's own sources: a changed compiler never reuses an old artifact."""
    from importlib.metadata import version  # not `import lutc`: lutc.LLM imports this module

    h = hashlib.blake2b(version("lutc").encode(), digest_size=8)
    root = Path(__file__).resolve().parents[2]
    for sub in ("compiler", "dialects", "passes", "runtime"):
        for f in sorted((root / sub).rglob("*")):
            if f.suffix in (".py", ".c", ".h") and "__pycache__" not in f.parts:
                h.update(f.read_bytes())
    return h.hexdigest()


def check_text(text: str, what: str) -> None:
    """Refuses a str that is not Unicode text: a command line of invalid UTF-8 bytes reaches
    Python as lone surrogates (surrogateescape), which the tokenizer cannot take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise LutcError(f"{what} is not valid UTF-8 text (character {err.start})") from None



def _quantization_summary(spec: str, report: list[tuple[str, float]]) -> str:
    """One line on what a weight format (--weights) did: how many float linear layers it
    quantized and their relative weight errors, or that none was float."""
    if not report:
        return (f"--weights {spec}: no float linear weights to quantize (the model's own "
                "low-bit formats are kept)")
    errs = [e for _, e in report]
    return (f"quantized {len(report)} linear layers to {spec}: relative weight error "
            f"{min(errs):.4f}-{max(errs):.4f}")

@dataclass
class GenerationStats:
    n_prompt: int = 0
    n_generated: int = 0
    ttft_ms: float = 0.0          # prompt in → first new token chosen
    prefill_tok_s: float = 0.0
    decode_tok_s: float = 0.0
    compile_s: float = 0.0
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    stop_reason: str = "max_new_tokens"  # | "eos" | "stop" (a stop string) | "max_context"


class LLM:
    """A compiled causal LM with its KV cache.

    model: a .gguf path, a Hugging Face directory, or a transformers PreTrainedModel.
    weights: None keeps the source's weights (GGUF codes exactly; float stays float) or a
        `--weights` spec (w4g32, w2g64, ternary, ...) that quantizes float linear layers.
    max_context: KV cache capacity in tokens (prompt + generated); default 2048, or the
        position table's length for models with learned positions (gpt2, opt).
    chunk: rows per call of the compiled function (prefill runs in chunks of this size).
    lossless: f32 tables (disables lut-quantize-table), exact up to float rounding.
    kv_cache: the KV cache's element type: "f32" (default, exact) or "f16" (half the memory
        and half the bytes attention reads per step; keys/values rounded to f16, ~2^-11
        relative each).
    progress: a progress bar over the compile's phases on stderr (compiler/progress.py):
        True / False, or None (default) for "only when stderr is a terminal".
    preflight: called with this LLM once its config, tokenizer and max_context are known and
        before the compile (`encode` works there), so that a caller can refuse its input
        early: `lutc generate` checks that its prompt fits max_context.
    Raises LutcError for a model lutc cannot build, naming what is wrong."""

    def __init__(self, model, weights: str | None = None, max_context: int | None = None,
                 chunk: int = DEFAULT_CHUNK, threads: int = 0, lossless: bool = False,
                 disable_passes: Sequence[str] = (), pass_options: dict | None = None,
                 cache_dir: str | Path | None = None, out=None, progress: bool | None = None,
                 kv_cache: str = "f32", preflight: Callable[[LLM], None] | None = None):
        from lutc.compiler.frontends.quantize import WeightSpec
        from lutc.runtime.model_loader import CompiledModel

        for name, value in (("max_context", max_context), ("chunk", chunk), ("threads", threads)):
            if not is_integer(value) and not (name == "max_context" and value is None):
                raise LutcError(f"{name} must be an integer, got {value!r}")
        if weights is not None and not isinstance(weights, str):
            raise LutcError(f"weights must be a format string like 'w4g32', got {weights!r}")
        if max_context is not None and max_context < 1:
            raise LutcError(f"max_context must be >= 1, got {max_context}")
        if not 1 <= chunk:
            raise LutcError(f"chunk must be >= 1, got {chunk}")
        if threads < 0:
            raise LutcError(f"threads must be >= 0 (0: all cores), got {threads}")
        if kv_cache not in KV_CACHE_DTYPES:
            raise LutcError(f"kv_cache must be one of {', '.join(KV_CACHE_DTYPES)}, "
                            f"got {kv_cache!r}")
        t0 = time.perf_counter()
        self.progress = progress
        self.source: ModelSource = load_source(model)
        try:
            self.config = DecoderConfig.from_hf(self.source.config)
        except LutcError as err:
            raise LutcError(f"{self.source.name}: {err}") from None
        if max_context is None:  # models with a learned position table stop at its length
            max_context = (DEFAULT_MAX_CONTEXT if self.config.position_embedding == "rope"
                           else min(DEFAULT_MAX_CONTEXT, self.config.max_position_embeddings))
        chunk = min(chunk, max_context)
        self.chunk, self.max_context = chunk, max_context
        self.tokenizer = self.source.tokenizer
        if preflight is not None:
            preflight(self)
        cfg = self.config
        self.kv_cache = self._allocate_kv_cache(
            (cfg.num_layers, 2, cfg.num_kv_heads, max_context, cfg.head_dim), kv_cache)
        spec = WeightSpec.parse(weights) if weights else None
        self.weights_format = weights  # the --weights text, for messages
        from lutc.compiler.pipeline import lossless_disabled

        disabled = lossless_disabled(disable_passes, lossless)
        options = {"weights": weights, "max_context": max_context, "chunk": chunk,
                   "disabled": sorted(set(disabled)), "pass_options": pass_options or {}}
        if kv_cache != "f32":  # keeps the keys (and compile caches) of f32-cache models
            options["kv_cache"] = kv_cache
        key = hashlib.blake2b(json.dumps([self.source.digest, options, _lutc_fingerprint()],
                                         sort_keys=True).encode(), digest_size=12).hexdigest()
        root = Path(cache_dir) if cache_dir else _cache_root()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LutcError(f"cannot use '{root}' as the compile cache ({err.strerror or err}; "
                            f"set LUTC_CACHE to a writable directory)") from None
        self.directory = root / key
        self.cached = (self.directory / "model.json").is_file()
        if self.cached:  # compiled under another cap: this one holds too
            from lutc.compiler.model_size import check_emitted_model

            check_emitted_model(self.directory, {})
        else:
            self._compile(spec, disabled, pass_options or {}, chunk, max_context, out, kv_cache)
        self.model = CompiledModel(self.directory)
        if threads:
            self.model.set_num_threads(threads)
        self.compile_s = time.perf_counter() - t0
        self._logits = None  # the model's output buffers, made on first use (_output_buffers)
        self._step = None  # the bound decode call and its inputs (_decode_step)
        # tensors are no longer needed once compiled: let the memory go
        self.source.tensors = {}

    @staticmethod
    def _allocate_kv_cache(shape: tuple, kv_cache: str) -> np.ndarray:
        """The zeroed KV cache, made before compiling so that a max_context too large fails
        first (LutcError when it exceeds the model byte cap or the memory lutc can map)."""
        from lutc.compiler.model_size import max_model_bytes

        nbytes = int(np.prod(shape, dtype=object)) * KV_CACHE_DTYPES[kv_cache].itemsize
        cap = max_model_bytes()
        if nbytes > cap:
            raise LutcError(f"the KV cache for max_context {shape[3]} takes {nbytes} bytes, more "
                            f"than the model byte cap {cap} (lower --max-context, "
                            f"use --kv-cache f16, or raise --max-model-bytes)")
        try:
            return np.zeros(shape, KV_CACHE_DTYPES[kv_cache])
        except MemoryError:
            raise LutcError(f"cannot allocate the KV cache for max_context {shape[3]} "
                            f"({nbytes} bytes): lower --max-context") from None

    def _compile(self, spec, disabled, pass_options, chunk, max_context, out, kv_cache) -> None:
        from lutc.compiler.codegen.build import build_library, emit_model
        from lutc.compiler.llm.decoder_graph import DecoderGraph
        from lutc.compiler.model_size import check_emitted_model, check_imported_weights
        from lutc.compiler.pipeline import PipelineOptions, run_pipeline
        from lutc.compiler.progress import CompileProgress

        say = out or (lambda s: None)
        tmp = self.directory.with_name(f".{self.directory.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with CompileProgress(4, self.progress, say) as bar:
                bar.start(f"built the decoder graph ({self.config.num_layers} layers)")
                try:
                    imported = DecoderGraph(self.config, self.source.tensors, chunk,
                                            max_context, spec, kv_cache).build()
                except LutcError as err:  # about the model's tensors: name the file's own
                    raise self.source.explain(err) from None
                if spec is not None:
                    say(_quantization_summary(self.weights_format, imported.quantization_report))
                check_imported_weights(imported.weights.arrays)
                bar.start("ran the LUT passes")
                run_pipeline(imported.module, PipelineOptions(disabled=disabled,
                                                              pass_options=pass_options, out=say))
                bar.start("emitted C")
                c_file = emit_model(imported, tmp, title="a causal language model")
                check_emitted_model(tmp, imported.weights.arrays)
                bar.start("compiled C")
                build_library(c_file)
            self.directory.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, self.directory)
            except OSError:  # another process finished the same model first
                if not (self.directory / "model.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- the forward pass -------------------------------------------------------------------
    def _check_ids(self, ids: Sequence[int]) -> np.ndarray:
        """Token ids as int64 [n]; LutcError for anything but integers in the vocabulary."""
        raw = np.asarray(ids)
        if raw.size and raw.dtype.kind not in "iu":
            raise LutcError(f"token ids must be integers, got {raw.dtype} values "
                            f"(text goes through a tokenizer: pass a str)")
        if raw.size and raw.dtype.kind == "u" and raw.max() >= self.config.vocab_size:
            raise LutcError(f"token id {int(raw.max())} is outside the vocabulary "
                            f"(0..{self.config.vocab_size - 1})")
        arr = raw.astype(np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= self.config.vocab_size):
            bad = int(arr[(arr < 0) | (arr >= self.config.vocab_size)][0])
            raise LutcError(f"token id {bad} is outside the vocabulary (0..{self.config.vocab_size - 1})")
        return arr

    def _forward(self, ids: np.ndarray, start: int, last_only: bool = False) -> np.ndarray:
        """Run ids (consecutive positions from `start`) through the model in chunks, appending
        to the KV cache; returns their logits f32 [len(ids), V], or with `last_only` those of
        the last token alone, f32 [1, V] (the LM head then runs on one row per chunk)."""
        n = len(ids)
        if start + n > self.max_context:
            raise LutcError(f"{start + n} tokens do not fit the context of {self.max_context} "
                            f"(compile with a larger max_context)")
        if n == 1 and last_only:
            return self._decode_step(int(ids[0]), start)[None].copy()
        out = np.empty((1 if last_only else n, self.config.vocab_size), np.float32)
        c = self.chunk
        for begin in range(0, n, c):
            rows = min(c, n - begin)
            tokens = np.zeros(c, np.int64)
            tokens[:rows] = ids[begin:begin + rows]
            p0 = start + begin
            positions = np.minimum(np.arange(p0, p0 + c, dtype=np.int64), self.max_context - 1)
            if last_only:  # earlier chunks' logits are not needed: one row, the cheapest
                select, index = 1, np.full(c, rows - 1, np.int64)
            else:
                select, index = rows, np.arange(c, dtype=np.int64)
            (logits,) = self.model.run_into(self._output_buffers(), tokens, positions,
                                            np.array([rows], np.int64), self.kv_cache,
                                            np.array([select], np.int64), index)
            if last_only:
                out[0] = logits[0]
            else:
                out[begin:begin + rows] = logits[:rows]
        return out

    def _output_buffers(self) -> list[np.ndarray]:
        """The model's output arrays, made on first use and shared by every call (prefill
        chunks and decode steps): no fresh pages for the logits per step."""
        if self._logits is None:
            self._logits = [np.empty(spec["shape"], spec["dtype"]) for spec in self.model.outputs]
        return self._logits

    def _decode_step(self, token: int, pos: int) -> np.ndarray:
        """One token at position `pos` (< max_context) through the compiled function, appending
        to the KV cache: its logits f32 [V], a view of the output buffer valid until the next
        call. The same call as _forward's (one real row, the rest padding; bitwise the same
        logits), bound once (CompiledModel.bind_into): the time outside the C call of a
        SmolLM2 step went ~233 -> ~160 us, the logits no longer copied."""
        if self._step is None:
            c = self.chunk
            self._step_in = (np.zeros(c, np.int64), np.zeros(c, np.int64), np.ones(1, np.int64),
                             np.ones(1, np.int64), np.zeros(c, np.int64))
            tokens, positions, rows, select, index = self._step_in
            self._step = self.model.bind_into(self._output_buffers(), tokens, positions, rows,
                                              self.kv_cache, select, index)
        tokens, positions = self._step_in[0], self._step_in[1]
        tokens[0] = token
        np.minimum(np.arange(pos, pos + self.chunk, dtype=np.int64), self.max_context - 1,
                   out=positions)
        self._step()
        return self._logits[0][0]

    def logits(self, token_ids: Sequence[int]) -> np.ndarray:
        """Logits f32 [n, V] of a token sequence from position 0 (the cache is reset)."""
        ids = self._check_ids(token_ids)
        if ids.size == 0:
            raise LutcError("logits() needs at least one token")
        return self._forward(ids, 0)

    # -- text -------------------------------------------------------------------------------
    def encode(self, prompt: str, chat: bool = False) -> list[int]:
        check_text(prompt, "the prompt")
        if self.tokenizer is None:
            why = f" ({self.source.tokenizer_problem})" if self.source.tokenizer_problem else ""
            raise LutcError(f"model '{self.source.name}' has no tokenizer{why}: pass token ids")
        if chat:
            prompt = self.apply_chat_template(prompt)
        return self.tokenizer.encode(prompt, add_special_tokens=not chat).ids

    def prompt_ids(self, prompt: str | Sequence[int], chat: bool = False) -> np.ndarray:
        """The token ids int64 [n] that `generate` would start from (text is encoded, with the
        chat template if `chat`). Raises LutcError for an empty prompt, one longer than
        max_context, ids outside the vocabulary, or text without a tokenizer."""
        ids = self._check_ids(self.encode(prompt, chat) if isinstance(prompt, str) else prompt)
        if ids.size == 0:
            raise LutcError("the prompt is empty")
        if ids.size > self.max_context:
            raise LutcError(f"the prompt has {ids.size} tokens, more than max_context "
                            f"({self.max_context})")
        return ids

    def apply_chat_template(self, user_message: str) -> str:
        template = self.source.chat_template
        if not template:
            raise LutcError(f"model '{self.source.name}' has no chat template")
        from lutc.compiler.llm.chat_template import render_chat_template

        return render_chat_template(template, self.source.name, dict(
            messages=[{"role": "user", "content": user_message}], add_generation_prompt=True,
            **{k: v for k, v in self.source.special_tokens.items() if v}))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids; LutcError for ids outside the vocabulary."""
        return self._text(self._check_ids(ids).tolist())

    def _text(self, ids: list[int]) -> str:
        """decode() of ids known to be in the vocabulary (the generation loop's own tokens)."""
        if self.tokenizer is None:
            return " ".join(map(str, ids))
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # -- generation -------------------------------------------------------------------------
    def generate(self, prompt: str | Sequence[int], max_new_tokens: int = 64,
                 temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                 seed: int | None = None, stop: Sequence[str] | None = None,
                 chat: bool = False, stream: bool = False):
        """Generate after `prompt` (text, or token ids). Greedy when temperature is 0.

        stream=True returns an iterator of text pieces as tokens come; otherwise the
        GenerationStats (text, token_ids, timings). Stops at max_new_tokens, an EOS token or
        a `stop` string. Raises LutcError for a prompt longer than max_context, ids outside
        the vocabulary, or text without a tokenizer."""
        check_sampling(temperature, top_k, top_p, seed)
        if not is_integer(max_new_tokens):
            raise LutcError(f"max_new_tokens must be an integer, got {max_new_tokens!r}")
        stop = [stop] if isinstance(stop, str) else stop
        if stop is not None and (not isinstance(stop, (list, tuple))
                                 or not all(isinstance(s, str) and s for s in stop)):
            raise LutcError(f"stop must be a string or a list of non-empty strings, got {stop!r}")
        if max_new_tokens < 0:
            raise LutcError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        ids = self.prompt_ids(prompt, chat)
        it = self._generate(ids, max_new_tokens, temperature, top_k, top_p, seed, stop or ())
        if stream:
            return it
        for _ in it:
            pass
        return self.last_stats

    def _generate(self, ids, max_new_tokens, temperature, top_k, top_p, seed, stop) -> Iterator[str]:
        rng = np.random.default_rng(seed)
        stats = GenerationStats(n_prompt=int(ids.size), compile_s=self.compile_s)
        self.last_stats = stats
        eos = set(self.config.eos_token_ids)
        t0 = time.perf_counter()
        logits = self._forward(ids, 0, last_only=True)[0]
        new: list[int] = []
        text = ""
        t_first = None
        t_decode = 0.0
        pos = int(ids.size)
        while len(new) < max_new_tokens:
            tok = next_token(logits, temperature, top_k, top_p, rng)
            if t_first is None:
                t_first = time.perf_counter()
                stats.ttft_ms = (t_first - t0) * 1e3
                stats.prefill_tok_s = ids.size / max(t_first - t0, 1e-9)
            new.append(tok)
            stats.token_ids, stats.n_generated = new, len(new)
            if tok in eos:
                stats.stop_reason = "eos"
                break
            full = self._text(new)
            piece, text = full[len(text):], full
            stats.text = text
            if any(s in text for s in stop):
                cut = min(text.index(s) for s in stop if s in text)
                stats.text = text[:cut]
                stats.stop_reason = "stop"
                yield piece[:max(0, len(piece) - (len(text) - cut))]
                break
            yield piece
            if len(new) == max_new_tokens:
                break
            if pos + 1 > self.max_context:
                stats.stop_reason = "max_context"
                break
            t = time.perf_counter()
            logits = self._decode_step(tok, pos)  # pos < max_context: checked above
            t_decode += time.perf_counter() - t
            pos += 1
        steps = max(len(new) - 1, 0)
        stats.decode_tok_s = steps / t_decode if t_decode > 0 else 0.0

    # -- scoring ----------------------------------------------------------------------------
    def perplexity(self, text_or_ids: str | Sequence[int], context: int = 512) -> dict:
        """Perplexity over non-overlapping windows of `context` tokens: in each window every
        token after the first is scored with the tokens before it in that window;
        PPL = exp(mean negative log-likelihood) (the standard definition, as llama.cpp's
        perplexity tool computes it per window). Returns {"ppl", "n_tokens", "n_windows"}."""
        if isinstance(text_or_ids, str):
            check_text(text_or_ids, "the text")
        ids = self._check_ids(self.tokenizer.encode(text_or_ids, add_special_tokens=False).ids
                              if isinstance(text_or_ids, str) and self.tokenizer is not None
                              else (self.encode(text_or_ids) if isinstance(text_or_ids, str)
                                    else text_or_ids))
        if context < 2 or context > self.max_context:
            raise LutcError(f"context must be in 2..max_context ({self.max_context}), got {context}")
        if ids.size < 2:
            raise LutcError("perplexity needs at least 2 tokens")
        nll, count, windows = 0.0, 0, 0
        for begin in range(0, ids.size - 1, context):
            window = ids[begin:begin + context]
            if window.size < 2:
                break
            logits = self._forward(window, 0).astype(np.float64)
            if not np.isfinite(logits).all():
                raise LutcError(f"the model computed non-finite logits (NaN or inf) in the "
                                f"window at token {begin}: its weights or config hold "
                                f"non-finite or out-of-range values")
            mx = logits[:-1].max(axis=1, keepdims=True)
            logz = np.log(np.exp(logits[:-1] - mx).sum(axis=1)) + mx[:, 0]
            nll += float((logz - logits[np.arange(window.size - 1), window[1:]]).sum())
            count += window.size - 1
            windows += 1
        return {"ppl": float(np.exp(nll / count)), "n_tokens": count, "n_windows": windows}
