"""LLM generation: decoder graphs with a KV cache, generation, perplexity."""
