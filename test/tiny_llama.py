"""The smallest Llama the tests compile: 1 layer, hidden 32, 2 heads / 1 KV head, vocab 64,
random weights (seeded). Needs torch and transformers (callers importorskip them first)."""


def tiny_llama(intermediate_size: int = 64):
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32,
                                   intermediate_size=intermediate_size, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=1,
                                   max_position_embeddings=64)
    return transformers.LlamaForCausalLM(cfg).eval()
