"""A GGUF file's tensors as (name, ggml type id, sha256 of the data bytes),
read with the standard library only: enough to compare two files' tensor
data whatever their metadata, e.g. our quantization against
llama-quantize's."""
import hashlib, struct

# GGUF metadata value types -> struct format of a scalar (8: string, 9: array).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}


def _read(f, fmt):
    return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]


def _string(f):
    return f.read(_read(f, "Q")).decode("utf-8", "replace")


def _value(f, vtype):
    if vtype == 8:
        return _string(f)
    if vtype == 9:
        etype, n = _read(f, "I"), _read(f, "Q")
        return [_value(f, etype) for _ in range(n)]
    return _read(f, _SCALARS[vtype])


def tensors(path):
    """[(name, type, sha256 hex)] in the file's order."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        _read(f, "I")  # version
        n_tensors, n_kv = _read(f, "Q"), _read(f, "Q")
        alignment = 32
        for _ in range(n_kv):
            key = _string(f)
            value = _value(f, _read(f, "I"))
            if key == "general.alignment":
                alignment = value
        infos = []
        for _ in range(n_tensors):
            name = _string(f)
            dims = [_read(f, "Q") for _ in range(_read(f, "I"))]
            infos.append((name, _read(f, "I"), _read(f, "Q"), dims))
        start = (f.tell() + alignment - 1) // alignment * alignment
        f.seek(0, 2)
        end = f.tell()
        offsets = sorted(info[2] for info in infos) + [end - start]
        out = []
        for name, ttype, offset, _ in infos:
            size = offsets[offsets.index(offset) + 1] - offset  # padding included
            f.seek(start + offset)
            out.append((name, ttype, hashlib.sha256(f.read(size)).hexdigest()))
        return out
