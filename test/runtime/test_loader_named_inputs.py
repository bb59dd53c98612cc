"""CompiledModel takes inputs by name, like onnxruntime's run(None, {name: array})."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lutc.compiler.llm.llm import LLM  # noqa: E402
from lutc.runtime.errors import LutcError  # noqa: E402


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   num_key_value_heads=1, max_position_embeddings=64)
    return LLM(transformers.LlamaForCausalLM(cfg).eval(), max_context=16, chunk=4,
               cache_dir=tmp_path_factory.mktemp("c"))


def feed(llm):
    return {"tokens": np.array([1, 2, 3, 0]), "positions": np.arange(4),
            "rows": np.array([3]), "kv_cache": np.zeros_like(llm.kv_cache),
            "logit_rows": np.array([3]), "logit_index": np.arange(4)}


def test_by_position_dict_keywords_and_run_agree(llm):
    model = llm.model
    f = feed(llm)
    (a,) = model(f["tokens"], f["positions"], f["rows"], np.zeros_like(llm.kv_cache),
                 f["logit_rows"], f["logit_index"])
    (b,) = model(f)
    (c,) = model(**{**f, "kv_cache": np.zeros_like(llm.kv_cache)})
    (d,) = model.run(["logits"], {**f, "kv_cache": np.zeros_like(llm.kv_cache)})
    for other in (b, c, d):
        np.testing.assert_array_equal(a[:3], other[:3])


def test_bad_names_are_user_errors(llm):
    f = feed(llm)
    with pytest.raises(LutcError, match="no input named 'token_ids'"):
        llm.model({**f, "token_ids": f.pop("tokens")})
    f = feed(llm)
    del f["rows"]
    with pytest.raises(LutcError, match="missing input"):
        llm.model(f)
    with pytest.raises(LutcError, match="either in order or by name"):
        llm.model(feed(llm)["tokens"], rows=np.array([1]))
    with pytest.raises(LutcError, match="no output named"):
        llm.model.run(["probs"], feed(llm))
