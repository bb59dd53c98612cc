"""`lutc generate` and `lutc perplexity`: the LLM commands of the `lutc` CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lutc.compiler.cli_parser import at_least
from lutc.compiler.model_size import add_size_options, apply_size_options
from lutc.runtime.errors import LutcError


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .gguf file or a Hugging Face model directory")
    p.add_argument("--weights", help="quantize float linear layers: w1..w8[gG][sym|asym] | "
                   "ternary[gG] (default: keep the model's own weights, GGUF codes exactly)")
    p.add_argument("--lossless", action="store_true",
                   help="f32 lookup tables (same as --disable-pass lut-quantize-table)")
    p.add_argument("--disable-pass", action="append", default=[], metavar="PASS")
    p.add_argument("--threads", type=at_least(int, 0), default=0, help="0: all cores")
    p.add_argument("--max-context", type=at_least(int, 1), default=None,
                   help="KV cache capacity in tokens (default 2048, or a learned position "
                   "table's length)")
    p.add_argument("--kv-cache", choices=("f32", "f16"), default="f32",
                   help="KV cache element type (f16: half the memory, keys and values rounded "
                   "to f16)")
    p.add_argument("--chunk", type=at_least(int, 1), default=None,
                   help="prefill rows per call of the compiled function (default: "
                   "lutc.compiler.llm.llm.DEFAULT_CHUNK, 128)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_size_options(p)


def _load(args, quiet: bool, preflight=None):
    from lutc.compiler.llm.llm import LLM

    apply_size_options(args)
    say = (lambda s: None) if quiet else (lambda s: print(f"lutc: {s}", file=sys.stderr))
    chunk = {} if args.chunk is None else {"chunk": args.chunk}
    return LLM(args.model, weights=args.weights, max_context=args.max_context, **chunk,
               threads=args.threads, lossless=args.lossless, disable_passes=args.disable_pass,
               out=say, kv_cache=args.kv_cache, preflight=preflight)


def _cmd_generate(args) -> None:
    from lutc.compiler.llm.llm import check_text

    prompt = args.prompt
    if prompt is None:  # both checked before the model compiles
        raise LutcError("give a prompt with -p")
    check_text(prompt, "the prompt")
    # tokenized once, before the compile: a prompt that cannot fit max_context fails first
    ids = []
    llm = _load(args, args.json, preflight=lambda llm: ids.append(llm.prompt_ids(prompt, args.chat)))
    stream = llm.generate(ids[0], max_new_tokens=args.n, temperature=args.temperature,
                          top_k=args.top_k, top_p=args.top_p, seed=args.seed, stop=args.stop,
                          stream=True)
    for piece in stream:
        if not args.json:
            print(piece, end="", flush=True)
    st = llm.last_stats
    if args.json:
        print(json.dumps({"text": st.text, "token_ids": st.token_ids, "n_prompt": st.n_prompt,
                          "n_generated": st.n_generated, "ttft_ms": round(st.ttft_ms, 3),
                          "prefill_tok_s": round(st.prefill_tok_s, 2),
                          "decode_tok_s": round(st.decode_tok_s, 2),
                          "compile_s": round(st.compile_s, 3), "stop_reason": st.stop_reason}))
        return
    print()
    if st.stop_reason == "max_context":
        print(f"lutc: stopped after {st.n_generated} tokens: the context of "
              f"{llm.max_context} tokens is full (--max-context)", file=sys.stderr)
    print(f"\nprompt tokens {st.n_prompt}, generated tokens {st.n_generated}, "
          f"time to first token {st.ttft_ms:.1f} ms, prefill {st.prefill_tok_s:.1f} tok/s, "
          f"decode {st.decode_tok_s:.1f} tok/s, compile {st.compile_s:.2f} s"
          f"{' (cached)' if llm.cached else ''}", file=sys.stderr)


def _cmd_perplexity(args) -> None:
    from lutc.compiler.llm.model_source import regular_file

    path = regular_file(Path(args.text), "text file")
    if args.max_context is not None and args.max_context < args.context:
        raise LutcError(f"--context {args.context} does not fit --max-context {args.max_context}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise LutcError(f"cannot read '{path}' as text: {err}") from None
    args.max_context = max(args.max_context or 0, args.context)
    llm = _load(args, args.json)
    result = llm.perplexity(text, context=args.context)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"perplexity {result['ppl']:.4f} over {result['n_tokens']} tokens "
              f"({result['n_windows']} windows of up to {args.context})")


def add_commands(sub) -> None:
    g = sub.add_parser("generate", help="generate text with a causal LM (GGUF or Hugging Face)")
    _model_options(g)
    g.add_argument("-p", "--prompt")
    g.add_argument("-n", type=at_least(int, 0), default=64, help="new tokens at most")
    g.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    g.add_argument("--temperature", type=at_least(float, 0), default=0.0, help="0: greedy")
    g.add_argument("--top-k", type=at_least(int, 0), default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--stop", action="append", default=[], metavar="TEXT")
    g.set_defaults(func=_cmd_generate)
    p = sub.add_parser("perplexity", help="perplexity of a causal LM on a text file")
    _model_options(p)
    p.add_argument("--text", required=True, metavar="FILE")
    p.add_argument("--context", type=at_least(int, 2), default=512,
                   help="tokens per non-overlapping window")
    p.set_defaults(func=_cmd_perplexity)
