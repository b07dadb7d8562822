#!/usr/bin/python3
"""Writes quantize_golden.json: the per-tensor types and data hashes of
llama-quantize's Q8_0 and Q4_K_M files made from our F32 synth models of each
architecture, for check_quantize.py, which holds `synth --type Q8_0/Q4_K_M`
(our quantizers and llama-quantize's per-tensor type mix) to them.

  tests/shapes/make_quantize_golden.py /path/to/llama.cpp BUILD_DIR
llama.cpp: a CPU build someone made there (build/bin/llama-quantize);
BUILD_DIR: layerpool's build. Builds nothing."""
import json, os, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "support"))
from gguf_tensors import tensors  # noqa: E402

llama, build = sys.argv[1], sys.argv[2]
shared = os.environ.get("LAYERPOOL_SHARED") or os.path.join(here, "..", "..", "..", "shared")
commit = (subprocess.run(["git", "-C", llama, "rev-parse", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
          or open(os.path.join(llama, "COMMIT")).read().strip())
vocab = "models/tinystories-656K/TinyStories-656K-Q8_0.gguf"
# Rows of 256 and more, so that K-quants fit every matrix.
SHAPES = {
    "llama": "--dim 256 --layers 4 --heads 4 --kv-heads 2 --ffn 512 --ctx 512 --seed 61",
    "qwen2": "--arch qwen2 --dim 256 --layers 4 --heads 4 --kv-heads 2 --ffn 512 --ctx 512 --seed 62",
    "phi3": "--arch phi3 --dim 256 --layers 4 --heads 4 --kv-heads 4 --ffn 512 --ctx 512 --seed 63",
    "gemma2": "--arch gemma2 --dim 256 --layers 4 --heads 4 --kv-heads 2 --ffn 512 --ctx 512 "
              "--seed 64",
    "mixtral": "--dim 256 --layers 4 --heads 4 --kv-heads 2 --ffn 256 --experts 8 "
               "--experts-used 2 --ctx 512 --seed 65",
}
golden = {"llama_cpp_commit": commit, "vocab_from": vocab,
          "command": "llama-quantize SYNTH-F32.gguf OUT.gguf TYPE", "shapes": {}}
with tempfile.TemporaryDirectory() as scratch:
    f32 = os.path.join(scratch, "f32.gguf")
    for name, flags in SHAPES.items():
        subprocess.run([os.path.join(build, "cli", "layerpool"), "synth", *flags.split(),
                        "--type", "F32", "--vocab-from", os.path.join(shared, vocab), "-o", f32],
                       check=True, capture_output=True)
        golden["shapes"][name] = {"synth": flags}
        for ftype in ("Q8_0", "Q4_K_M"):
            out = os.path.join(scratch, f"{ftype}.gguf")
            subprocess.run([os.path.join(llama, "build", "bin", "llama-quantize"), f32, out, ftype],
                           check=True, capture_output=True)
            golden["shapes"][name][ftype] = {t[0]: [t[1], t[2]] for t in tensors(out)}
        print(name, "done")
with open(os.path.join(here, "quantize_golden.json"), "w") as f:
    json.dump(golden, f, indent=0)
print(f"wrote {here}/quantize_golden.json (llama.cpp {commit})")
