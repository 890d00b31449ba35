"""flowpolicy's checkpoint file, written and read from PyTorch (Sources/FlowPolicy/Checkpoints/Checkpoint.swift).

A safetensors file: the network's F32 tensors under the module's names in flowpolicy's declaration order, then
`normalizer.observation.min|max` [Do] and `normalizer.action.min|max` [Da], and string metadata (`format`,
`format_version`, `architecture`, `To`, `Ta`, `Tp`, `obs_dim`, `action_dim`, `task`, `method`, `network`,
`provenance`, `deployment`). The writer lays the file out byte for byte as flowpolicy's `SafeTensorsFile` does (header
keys sorted, tensors in declaration order, JSON values spelled as Foundation spells them), so the same weights and
metadata give the same file whichever trainer wrote it. Writes are atomic: a temporary file beside the target, flushed
and renamed over it.
"""

import json
import struct

import numpy as np
import torch
from safetensors import safe_open

from flowpolicy_data.dataset import atomic_file

from .network import NetworkSizes, ResMLPFiLM

FORMAT_NAME = "flowpolicy"
FORMAT_VERSION = 1
ARCHITECTURE = "ResMLPFiLM"


class CheckpointError(Exception):
    """A file that is not a checkpoint this package can load; the message names the file and the problem."""


def foundation_json(value):
    """JSON text as Foundation writes flowpolicy's metadata values (JSONSerialization / JSONEncoder with sorted
    keys): no spaces, slashes escaped, float32 numbers in their shortest form and integral ones without a fraction
    (`512`, `0.05`), Python floats (Swift Doubles) likewise."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{foundation_json(str(k))}:{foundation_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ",".join(foundation_json(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("/", "\\/")
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (np.float32, float)):
        return np.format_float_positional(value, unique=True, trim="-")
    raise TypeError(f"cannot write {type(value).__name__} into checkpoint metadata")


def swift_float(value):
    """`String(Float)` (provenance's learning rate): the shortest digits that read back as the same float32, in
    decimal form (`0.0001`, `256.0`) unless the decimal exponent is below -4 or the value is beyond the floats that
    hold every integer, 2^24 (`1e-05`, `3.3554432e+07`)."""
    number = np.float32(value)
    exponent = int(np.format_float_scientific(number, unique=True).split("e")[1]) if number != 0 else 0
    if exponent < -4 or abs(number) > 2 ** 24:
        return np.format_float_scientific(number, unique=True, trim="-", exp_digits=2)
    text = np.format_float_positional(number, unique=True)
    return text + "0" if text.endswith(".") else text


def _header_string(text):
    """A JSON string as flowpolicy's safetensors writer escapes it (quote, backslash, \\n \\r \\t, other controls as
    \\u00XX; nothing else)."""
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(c, f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text) + '"'


def serialize(metadata, tensors):
    """A safetensors file's bytes: `tensors` is a list of (name, float32 array) in file order."""
    entries = []
    if metadata:
        pairs = ",".join(f"{_header_string(k)}:{_header_string(metadata[k])}" for k in sorted(metadata))
        entries.append(f'"__metadata__":{{{pairs}}}')
    offset = 0
    blobs = []
    for name, array in tensors:
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        shape = ",".join(str(n) for n in array.shape)
        entries.append(f'{_header_string(name)}:{{"dtype":"F32","shape":[{shape}],'
                       f'"data_offsets":[{offset},{offset + len(data)}]}}')
        offset += len(data)
        blobs.append(data)
    header = ("{" + ",".join(entries) + "}").encode("utf-8")
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"".join(blobs)


def write_checkpoint(path, sizes, weights, observation_normalizer, action_normalizer, spec, provenance, contract,
                     method="fm"):
    """Writes a single-stage policy: the network's `sizes` and `weights` (name -> tensor in declaration order, as
    `ResMLPFiLM.state_dict()` lists them; the trainer passes the EMA weights), the normalizers, `spec` (task, To, Ta,
    Tp, obs_dim, action_dim), `provenance` (strings) and the deployment `contract` (a dict from
    `deployment_contract`, or None)."""
    tensors = [(name, tensor.detach().to("cpu", torch.float32).numpy()) for name, tensor in weights.items()]
    for name, normalizer in (("observation", observation_normalizer), ("action", action_normalizer)):
        tensors.append((f"normalizer.{name}.min", normalizer.minimum))
        tensors.append((f"normalizer.{name}.max", normalizer.maximum))
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "architecture": ARCHITECTURE,
        "To": str(spec["To"]),
        "Ta": str(spec["Ta"]),
        "Tp": str(spec["Tp"]),
        "obs_dim": str(spec["obs_dim"]),
        "action_dim": str(spec["action_dim"]),
        "task": spec["task"],
        "method": method,
        "network": foundation_json(sizes.as_metadata()),
        "provenance": foundation_json({k: str(v) for k, v in provenance.items()}),
    }
    if contract is not None:
        metadata["deployment"] = foundation_json(contract)
    data = serialize(metadata, tensors)
    with atomic_file(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)


def load_policy(path):
    """(model in eval mode, metadata, normalizer tensors by name) of a single-stage flow-matching checkpoint; with
    cameras the model is an `ImageFlowPolicy` (the network and its image encoders)."""
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors reports a missing, damaged or foreign file as its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT_NAME or metadata.get("architecture") != ARCHITECTURE:
        raise CheckpointError(f"{path}: not a flowpolicy {ARCHITECTURE} checkpoint (format "
                              f"{metadata.get('format')!r}, architecture {metadata.get('architecture')!r})")
    if "network" not in metadata:
        raise CheckpointError(f"{path}: a chain (Local Flow Matching) checkpoint; only single-network policies load "
                              "here")
    if "residual" in metadata:
        raise CheckpointError(f"{path}: has a residual head (method {metadata.get('method')}), which this package "
                              "does not model")
    sizes = NetworkSizes(**json.loads(metadata["network"]))
    if "cameras" in metadata:
        from .image_policy import ImageFlowPolicy  # torchvision only for policies with cameras
        model = ImageFlowPolicy(sizes, json.loads(metadata["cameras"]), json.loads(metadata["image_encoder"]))
    else:
        model = ResMLPFiLM(sizes)
    normalizer = {k: v for k, v in tensors.items() if k.startswith("normalizer.")}
    try:
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("normalizer.")}, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: the tensors do not fit the network its metadata describes ({error})") from None
    return model.eval(), metadata, normalizer
