"""C code generation: weight folding, buffer planning, the C emitter, the build."""
