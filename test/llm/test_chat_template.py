"""compiler/llm/chat_template.py: a model's chat template renders like plain Jinja, and a
hostile one ends in one LutcError (no hang, no exhausted memory, no traceback)."""

import time

import pytest

from lutc.compiler.llm import chat_template
from lutc.compiler.llm.chat_template import render_chat_template
from lutc.runtime.errors import LutcError

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
VARS = dict(messages=[{"role": "user", "content": "Hi ü"}], add_generation_prompt=True,
            eos_token="</s>")


def test_renders_like_jinja():
    import jinja2

    expected = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        CHATML).render(**VARS)
    assert render_chat_template(CHATML, "m", VARS) == expected
    assert "Hi ü" in expected


@pytest.mark.parametrize("template, message", [
    ("{{ raise_exception('only user and assistant roles') }}", "only user and assistant roles"),
    ("{% for i in range(10**12) %}x{% endfor %}", "OverflowError"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "SecurityError"),
    ("{{ messages[0].content | unknown_filter }}", "unknown_filter"),
    ("{% if %}", "TemplateSyntaxError"),
    ("{% set s = 'x' * 100000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
     "renders more than"),
    ("{% set s = 'x' * 100000000 %}{% set t = [s, s, s, s, s, s, s] | join %}"
     "{% set u = [t, t, t, t] | join %}{{ u | length }}", "memory"),
])
def test_hostile_template_is_one_error(template, message):
    with pytest.raises(LutcError, match="chat template of 'evil.gguf'") as err:
        render_chat_template(template, "evil.gguf", VARS)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_endless_template_stops_at_the_deadline(monkeypatch):
    monkeypatch.setattr(chat_template, "MAX_SECONDS", 1.0)
    endless = ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
               "{% endfor %}")
    t = time.monotonic()
    with pytest.raises(LutcError, match="did not finish within 1 s"):
        render_chat_template(endless, "evil.gguf", VARS)
    assert time.monotonic() - t < 10


def test_sandbox_hides_function_internals():
    """An unsafe attribute is undefined in the sandbox: it renders as nothing."""
    assert render_chat_template("{% for m in messages %}{{ m.role.upper.__globals__ }}"
                                "{% endfor %}", "evil.gguf", VARS) == ""
