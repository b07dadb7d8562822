#!/usr/bin/env python3
"""Holds layerpool's Jinja interpreter to python3-jinja2, byte for byte.

Every template in templates/ (and the Llama 3 one in
$LAYERPOOL_SHARED/models/llama3-tokenizer) is rendered with every
conversation in conversations.json by jinja2, in the environment Hugging
Face transformers uses for chat templates, and by `layerpool chat-template`.
Both must give the same bytes, or both must refuse (with the same message
when the template itself raises).

usage: check_templates.py PATH/TO/layerpool [SHARED_DIR]
(LAYERPOOL_SHARED, when set, wins over SHARED_DIR.)
"""
import json
import os
import subprocess
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
BOS, EOS = "<s>", "</s>"


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def jinja2_env():
    # As transformers' _compile_jinja_template builds it.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def load_templates():
    templates = {}
    for name in sorted(os.listdir(os.path.join(HERE, "templates"))):
        with open(os.path.join(HERE, "templates", name), encoding="utf-8") as f:
            templates[name[:-len(".jinja")]] = f.read()
    shared = os.environ.get("LAYERPOOL_SHARED") or (sys.argv[2] if len(sys.argv) > 2 else "")
    if not shared or not os.path.isdir(shared):
        sys.exit(f"shared data not found at '{shared}': set LAYERPOOL_SHARED "
                 "(the Llama 3 template lives in its models/llama3-tokenizer)")
    config = os.path.join(shared, "models", "llama3-tokenizer", "tokenizer_config.json")
    with open(config, encoding="utf-8") as f:
        templates["llama3 (shared)"] = json.load(f)["chat_template"]
    return templates


def expected(env, source, variables):
    try:
        return "ok", env.from_string(source).render(**variables)
    except TemplateError as e:
        return "raised", str(e)
    except jinja2.TemplateError as e:
        return "error", str(e)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
        return "error", str(e)


def actual(binary, path, variables):
    run = subprocess.run([binary, "chat-template", "--chat-template", path],
                         input=json.dumps(variables).encode(), capture_output=True,
                         timeout=30)
    if run.returncode == 0:
        return "ok", run.stdout.decode("utf-8", errors="replace")
    return "error", run.stderr.decode("utf-8", errors="replace").strip()


def main():
    binary = sys.argv[1]
    with open(os.path.join(HERE, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)
    env = jinja2_env()
    passed = failed = 0
    scratch = os.environ.get("TMPDIR", "/tmp")
    for name, source in load_templates().items():
        path = os.path.join(scratch, f"layerpool-template-{os.getpid()}.jinja")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        for conv_name, conv in conversations.items():
            variables = {"add_generation_prompt": True, "bos_token": BOS, "eos_token": EOS}
            variables.update(conv)
            want_kind, want = expected(env, source, variables)
            got_kind, got = actual(binary, path, variables)
            if want_kind == "ok":
                ok = got_kind == "ok" and got == want
            elif want_kind == "raised":
                ok = got_kind == "error" and got == f"error: {want}"
            else:
                ok = got_kind == "error"
            if ok:
                passed += 1
            else:
                failed += 1
                print(f"FAIL {name} x {conv_name}:\n  jinja2 ({want_kind}): {want!r}\n"
                      f"  layerpool ({got_kind}): {got!r}")
        os.unlink(path)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
