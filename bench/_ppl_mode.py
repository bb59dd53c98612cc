"""One perplexity measurement for bench_accuracy.py, in its own process (so that runtime
environment variables take effect): argv = tokens, JSON of LLM options. Prints one JSON line
{"ppl", "reference", "n_tokens"}; the reference (transformers on the same GGUF) is cached in
bench/results/ppl_reference.json per token count."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from test.llm.test_smollm2_perplexity import CONTEXT, corpus, reference_ppl  # noqa: E402

from lutc.compiler.llm.demo import smollm2_gguf  # noqa: E402
from lutc.compiler.llm.llm import LLM  # noqa: E402


def main() -> None:
    tokens, options = int(sys.argv[1]), json.loads(sys.argv[2])
    gguf = smollm2_gguf()
    llm = LLM(gguf, max_context=CONTEXT, **options)
    ids = np.array(llm.tokenizer.encode(corpus(), add_special_tokens=False).ids)[:tokens]
    ours = llm.perplexity(ids, context=CONTEXT)
    cache = ROOT / "bench" / "results" / "ppl_reference.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    if str(ids.size) not in known:
        import torch
        import transformers

        transformers.utils.logging.disable_progress_bar()
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
        known[str(ids.size)] = reference_ppl(model, ids, CONTEXT)
        cache.parent.mkdir(exist_ok=True)
        cache.write_text(json.dumps(known))
    print(json.dumps({"ppl": ours["ppl"], "reference": known[str(ids.size)],
                      "n_tokens": ours["n_tokens"]}))


if __name__ == "__main__":
    main()
