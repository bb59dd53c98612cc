"""Rendering a model file's chat template (Jinja) without trusting it.

A chat template is code that comes with the model (a GGUF's `tokenizer.chat_template`, a
Hugging Face `tokenizer_config.json` or `chat_template.jinja`). It runs in Jinja's immutable
sandbox (no attribute escapes), and on POSIX in a forked child process with a deadline
(`MAX_SECONDS`) and an address-space cap (`MAX_EXTRA_BYTES` above the parent's size), so that
a template that loops for ever or builds a 10 GB string ends in one LutcError instead of a
hang or an exhausted machine. The rendered text is capped at `MAX_OUTPUT_CHARS`. Any error
the template raises (its own `raise_exception(...)`, a Jinja error, an overflow) becomes a
LutcError naming the model.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import warnings

from lutc.runtime.errors import LutcError, first_line

MAX_SECONDS = 10.0
MAX_OUTPUT_CHARS = 1 << 20
MAX_EXTRA_BYTES = 512 << 20


def render_chat_template(template: str, model_name: str, variables: dict) -> str:
    """`template` rendered with `variables` (messages, add_generation_prompt, bos/eos tokens).

    Raises LutcError "chat template of 'MODEL': ..." when the template fails, runs longer than
    MAX_SECONDS, needs more than MAX_EXTRA_BYTES of memory or renders more than
    MAX_OUTPUT_CHARS characters."""
    if not hasattr(os, "fork"):
        result = _render(template, variables)
    else:
        result = _render_in_child(template, variables)
    if "error" in result:
        raise LutcError(f"chat template of '{model_name}': {result['error']}")
    return result["text"]


def _render(template: str, variables: dict) -> dict:
    """{"text": ...} or {"error": one line}."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class TemplateRaised(Exception):
        pass

    def raise_exception(message):
        raise TemplateRaised(str(message))

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        pieces, size = [], 0
        for piece in env.from_string(template).generate(**variables):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                return {"error": f"renders more than {MAX_OUTPUT_CHARS} characters"}
            pieces.append(piece)
        return {"text": "".join(pieces)}
    except TemplateRaised as err:
        return {"error": first_line(str(err), 300) or "(no message)"}
    except MemoryError:
        return {"error": f"needs more than {MAX_EXTRA_BYTES >> 20} MiB of memory"}
    except (jinja2.TemplateError, Exception) as err:  # noqa: BLE001 -- the template is foreign code
        return {"error": f"{type(err).__name__}: {first_line(str(err), 300) or '(no message)'}"}


def _address_space() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _render_in_child(template: str, variables: dict) -> dict:
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork() with threads running;
        warnings.simplefilter("ignore", DeprecationWarning)  # the child only runs Python code
        pid = os.fork()
    if pid == 0:  # the child: render, write one JSON line, leave without cleanup handlers
        code = 0
        try:
            os.close(read_end)
            size = _address_space()
            if size is not None:
                import resource

                limit = size + MAX_EXTRA_BYTES
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            data = json.dumps(_render(template, variables)).encode()
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
        except BaseException:  # noqa: BLE001 -- nothing may escape the child
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + MAX_SECONDS
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                return {"error": f"did not finish within {MAX_SECONDS:g} s"}
            ready, _, _ = select.select([read_end], [], [], left)
            if ready:
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"error": f"the renderer stopped without a result (more than "
                         f"{MAX_EXTRA_BYTES >> 20} MiB of memory?)"}
