"""A `tokenizers.Tokenizer` rebuilt from a GGUF file's `tokenizer.ggml.*` metadata.

Mirrors transformers' GGUF tokenizer conversion (integrations/gguf/gguf_tokenizer_mapping.py,
which hands the vocabulary to GPT2Tokenizer / LlamaTokenizer) using only the `tokenizers` package,
so no transformers or torch at run time:

  * "gpt2": byte-level BPE. Tokens are spelled in GPT-2's byte alphabet (a token spelled outside
    it is re-spelled byte by byte); the pre-tokenizer's split regex is picked by
    `tokenizer.ggml.pre`, else GPT-2's own.
  * "llama": SentencePiece BPE with byte fallback and a "\u2581" prefix space (phi3: the prefix
    comes from a normalizer instead, as in Phi-3's tokenizer.json). Merges from the file, or
    derived from the token scores when the file has none.

Both add CONTROL tokens (token_type 3) and the bos/eos/unk/pad tokens as special tokens and
USER_DEFINED ones (token_type 4) as plain added tokens, so they are matched whole; BOS/EOS are
prepended/appended per `tokenizer.ggml.add_bos_token` / `add_eos_token`.
"""

from __future__ import annotations

from functools import lru_cache

from lutc.runtime.errors import LutcError, first_line

_CONTROL, _USER_DEFINED = 3, 4

_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN35_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"
    r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GPT4O_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# tokenizer.ggml.pre -> split regex (transformers' GGUF_PRE_TOKENIZER_SPLITS); others use GPT-2's.
PRE_TOKENIZER_SPLITS = {
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                     "midm-2.0", "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe"), _LLAMA3_SPLIT),
    "tekken": _TEKKEN_SPLIT,
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"), _QWEN2_SPLIT),
    "qwen35": _QWEN35_SPLIT,
    **dict.fromkeys(("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"), _GPT4O_SPLIT),
}


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte alphabet: printable bytes stand for themselves, the rest map above U+0100."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
                 + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars)))


def build_tokenizer(metadata: dict, architecture: str, path):
    """The file's tokenizer, or LutcError naming the file when its metadata cannot describe one."""
    try:
        return _build(metadata, architecture, path)
    except LutcError:
        raise
    except Exception as e:  # the tokenizers library rejecting an inconsistent vocabulary/merges
        reason = first_line(str(e)) or type(e).__name__
        raise LutcError(f"{path}: cannot build a tokenizer from its metadata: {reason}") from None


def _build(metadata: dict, architecture: str, path):
    from tokenizers import AddedToken, processors

    kind = metadata.get("tokenizer.ggml.model")
    tokens = metadata.get("tokenizer.ggml.tokens")
    if kind is None or tokens is None:
        missing = "tokenizer.ggml.model" if kind is None else "tokenizer.ggml.tokens"
        raise LutcError(f"{path}: has no tokenizer (missing metadata key '{missing}')")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise LutcError(f"{path}: metadata key 'tokenizer.ggml.tokens' is not a list of strings")
    if kind == "gpt2":
        tokenizer = _byte_level(metadata, tokens, path)
    elif kind == "llama":
        tokenizer = _sentencepiece(metadata, tokens, architecture, path)
    else:
        raise LutcError(f"{path}: tokenizer model {kind!r} is not supported by lutc "
                        "(supported: gpt2, llama)")

    byte_level = kind == "gpt2"
    alphabet = set(bytes_to_unicode().values())
    types = list(metadata.get("tokenizer.ggml.token_type", ()))
    vocab = tokenizer.get_vocab()

    def spelled(token: str) -> bool:
        # A byte-level vocabulary writes every real token in the byte alphabet; one that is not is
        # a llama.cpp mislabel, skipped as transformers does.
        return not byte_level or set(token) <= alphabet

    special = [t for t, ty in zip(tokens, types) if ty == _CONTROL and spelled(t)]
    named = {}
    for name, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"),
                      ("unk", "unknown_token_id"), ("pad", "padding_token_id")):
        token_id = metadata.get(f"tokenizer.ggml.{key}")
        if token_id is None:
            continue
        if not isinstance(token_id, int) or not 0 <= token_id < len(tokens):
            raise LutcError(f"{path}: metadata key 'tokenizer.ggml.{key}' = {token_id!r} is not a "
                            f"token id (the vocabulary has {len(tokens)} tokens)")
        named[name] = (tokens[token_id], token_id)
        if tokens[token_id] not in special and spelled(tokens[token_id]):
            special.append(tokens[token_id])
    if special:
        tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in special])
    user = [t for t, ty in zip(tokens, types) if ty == _USER_DEFINED and t in vocab]
    if user:
        tokenizer.add_tokens([AddedToken(t, normalized=False, special=False) for t in user])

    add_bos = metadata.get("tokenizer.ggml.add_bos_token", kind == "llama")
    add_eos = metadata.get("tokenizer.ggml.add_eos_token", False)
    add_bos, add_eos = add_bos and "bos" in named, add_eos and "eos" in named
    if add_bos or add_eos:
        bos, eos = named.get("bos"), named.get("eos")
        single = " ".join(([f"{bos[0]}:0"] if add_bos else []) + ["$A:0"]
                          + ([f"{eos[0]}:0"] if add_eos else []))
        pair = single + " " + " ".join(([f"{bos[0]}:1"] if add_bos else []) + ["$B:1"]
                                       + ([f"{eos[0]}:1"] if add_eos else []))
        tokenizer.post_processor = processors.TemplateProcessing(
            single=single, pair=pair,
            special_tokens=([bos] if add_bos else []) + ([eos] if add_eos else []))
    return tokenizer


def _merges(metadata: dict, path) -> list[tuple[str, str]] | None:
    merges = metadata.get("tokenizer.ggml.merges")
    if merges is None:
        return None
    pairs = []
    for merge in merges:
        parts = merge.split(" ") if isinstance(merge, str) else ()
        if len(parts) != 2:
            raise LutcError(f"{path}: metadata 'tokenizer.ggml.merges' has an entry {merge!r} that "
                            "is not two tokens separated by one space")
        pairs.append(tuple(parts))
    return pairs


def _byte_level(metadata: dict, tokens: list[str], path):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    spelling = bytes_to_unicode()
    alphabet = set(spelling.values())
    vocab = {t if set(t) <= alphabet else "".join(spelling[b] for b in t.encode("utf-8")): i
             for i, t in enumerate(tokens)}
    merges = _merges(metadata, path)
    if merges is None:
        raise LutcError(f"{path}: byte-level BPE tokenizer has no 'tokenizer.ggml.merges'")
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None,
                                     continuing_subword_prefix="", end_of_word_suffix="",
                                     fuse_unk=False))
    split = PRE_TOKENIZER_SPLITS.get(metadata.get("tokenizer.ggml.pre"))
    if split is None:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def _sentencepiece(metadata: dict, tokens: list[str], architecture: str, path):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab = {t: i for i, t in enumerate(tokens)}
    merges = _merges(metadata, path)
    if merges is None:
        scores = metadata.get("tokenizer.ggml.scores")
        if scores is None or len(scores) != len(tokens):
            raise LutcError(f"{path}: SentencePiece tokenizer has neither 'tokenizer.ggml.merges' "
                            "nor one 'tokenizer.ggml.scores' entry per token")
        merges = _merges_from_scores(vocab, dict(zip(tokens, (float(s) for s in scores))))
    unk_id = metadata.get("tokenizer.ggml.unknown_token_id")
    unk = tokens[unk_id] if isinstance(unk_id, int) and 0 <= unk_id < len(tokens) else None
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True,
                                     byte_fallback=True, dropout=None))
    prefix = bool(metadata.get("tokenizer.ggml.add_space_prefix", True))
    if architecture == "phi3":
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement="\u2581", prepend_scheme="first" if prefix else "never", split=False)
    steps = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if prefix:
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    tokenizer.decoder = decoders.Sequence(steps)
    return tokenizer


def _merges_from_scores(vocab: dict[str, int], scores: dict[str, float]) -> list[tuple[str, str]]:
    """Every split of a token into two vocabulary tokens, best-scoring merged token first
    (transformers' generate_merges)."""
    merges = []
    for token, score in scores.items():
        local = [(token[:i], token[i:], score) for i in range(1, len(token))
                 if token[:i] in vocab and token[i:] in vocab]
        merges.extend(sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]])))
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(a, b) for a, b, _ in merges]
