#!/usr/bin/env python3
"""ONNX Runtime's speed on flowpolicy's velocity network, at each precision, and a cross-check of its chunks.

  bench:  python tools/bench_onnx_reference.py bench [--checkpoint POLICY.safetensors] [--steps 10] [--iterations 500]
                 [--batch 64] [--threads 1] [--precisions fp32,bf16,int8,fp16]
          Builds v(t, x, o) as an ONNX graph (the reference network of `flowpolicy bench infer` with seeded random
          weights, or a checkpoint's) and times whole action chunks as flowpolicy does: noise x0, then K Euler steps,
          each one `InferenceSession` call. Batch 1 latency p50/p99 over --iterations chunks after 20 warm-up chunks,
          and chunks/s at --batch, on --threads threads (intra-op; one inter-op thread, sequential execution, every
          graph optimization). Prints one JSON object on stdout, progress on stderr.
  check:  python tools/bench_onnx_reference.py check POLICY.safetensors SAMPLE.json [--tolerance 1e-4]
          Rebuilds the checkpoint's network as an ONNX graph, regenerates flowpolicy's seeded noise, integrates with the
          solver the report names and compares ORT's fp32 chunks with those `flowpolicy sample --json` wrote, in
          normalized action units (as tools/pytorch_reference.py check does). Fails above the tolerance. Also prints
          how far the int8 graph's chunks are from the fp32 graph's on the same noise (information, not a failure).

The graph (ONNX opset 18, batch B a dynamic dimension), as Sources/FlowPolicy/Networks/ResMLPFiLM.swift computes it:

    t [B], x [B, Dx], o [B, To*Do] -> v [B, Dx]
    c = [sin(1000 t f), cos(1000 t f), o]                 Mul, Mul, Sin, Cos, Concat    [B, Dc]
    h = x Wᵀ + b                                          MatMul, Add                   [B, H]
    each block: γ, β = Split(c W_filmᵀ + b_film)
                h = h + l2(Mish(l1(Mish(LN(h) (1 + γ) + β))))  LayerNormalization (ε 1e-5), Mish
    v = out(Mish(LN(h)))

Linear layers are MatMul on the transposed weight [in, out] plus Add, not Gemm: ORT fuses MatMul + Add into Gemm for
fp32, and `quantize_dynamic` quantizes MatMul (not Gemm) in dynamic mode.

Precisions:
  fp32  the graph as built.
  int8  `onnxruntime.quantization.quantize_dynamic`: weights QInt8 per output channel (symmetric), activations uint8
        quantized per tensor at run time (DynamicQuantizeLinear + MatMulInteger, fused by ORT into
        DynamicQuantizeMatMul / MatMulIntegerToFloat): u8 x s8 is the form MLAS runs fastest on x86 (VNNI's vpdpbusd).
        reduce_range (7-bit weights) only where the CPU lacks VNNI, whose AVX2 path can saturate. The time embedding,
        LayerNorm, Mish and FiLM stay fp32.
  bf16  every MatMul in bfloat16 (weight stored bf16, its input cast to bf16, the product cast back to float32); the
        rest float32, as in int8. ORT's CPU execution provider has no bfloat16 MatMul (or Gemm, Add, LayerNormalization)
        kernel on x86: 1.32 refuses the session with NOT_IMPLEMENTED (its only bf16 GEMM is the fp32 MatMul's fast-math
        option on arm64), so the entry is reported unsupported, with ORT's own message, rather than timed. (Mish and
        Sin do not even admit bfloat16 in the ONNX standard.)
  fp16  the bf16 graph with float16, which ORT's CPU provider does run; shown beside bf16 as the nearest 16-bit float
        it supports (not run by default: add it to --precisions).

Python's own cost is kept small: each step is one `run_with_iobinding` on bindings made once per t value, whose inputs
and output are OrtValues sharing the memory of preallocated numpy buffers, and the Euler update is done in place. The
`python_loop` entry of the report times the same loop on an Identity graph (v = x): that is the per-chunk cost of the
Python loop and ORT's call overhead, included in every figure above it.

Needs onnx, onnxruntime, numpy and safetensors (scripts/setup.sh installs them into the tools' environment), and
clients/python's flowpolicy_torch.noise (pure Python, no torch) for flowpolicy's seeded noise. Not needed by flowpolicy.
"""
import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors import safe_open

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "clients", "python"))

from flowpolicy_torch.noise import RandomSource  # noqa: E402 (pure Python; the package imports torch only elsewhere)

OPSET = 18
PRECISIONS = ("fp32", "bf16", "int8", "fp16")
SOLVERS = ("euler", "midpoint", "rk4")
WARMUP = 20
RANGE_EPSILON = np.float32(1e-4)  # flowpolicy's MinMaxNormalizer: a narrower range is left unscaled
# The reference network of `flowpolicy bench infer` (InferenceBenchmark.referenceCheckpoint).
REFERENCE = dict(To=2, Do=5, Tp=16, Da=2, hidden=512, blocks=4, time_embedding=64)


class RefusedInput(Exception):
    """A checkpoint or report this tool cannot use; the message is one line naming the file and the problem."""


def log(message):
    print(message, file=sys.stderr, flush=True)


class Normalizer:
    """flowpolicy's MinMaxNormalizer: normalized = raw * scale + offset, float32 (flowpolicy_torch.data's, without
    torch)."""

    def __init__(self, minimum, maximum):
        minimum, maximum = np.asarray(minimum, np.float32), np.asarray(maximum, np.float32)
        span = maximum - minimum
        wide = span >= RANGE_EPSILON
        self.scale = np.where(wide, np.float32(2) / np.where(wide, span, 1), np.float32(1)).astype(np.float32)
        self.offset = np.where(wide, np.float32(-1) - minimum * self.scale, np.float32(0)).astype(np.float32)

    def normalize(self, values):
        return (values * self.scale + self.offset).astype(np.float32)

    def denormalize(self, values):
        return ((values - self.offset) / self.scale).astype(np.float32)


class Network:
    """A ResMLP-FiLM's sizes, weights (checkpoint names, float32 [out, in] for Linear) and policy shapes."""

    def __init__(self, description, To, Do, Tp, Da, hidden, blocks, time_embedding, weights, normalizers=None):
        self.description = description
        self.To, self.Do, self.Tp, self.Da = To, Do, Tp, Da
        self.H, self.N, self.Te = hidden, blocks, time_embedding
        self.Dx, self.Dobs = Tp * Da, To * Do
        self.weights = weights
        self.normalizers = normalizers  # (observation, action) Normalizer, or None for the reference network
        expected = self.shapes()
        for name, shape in expected.items():
            if name not in weights:
                raise RefusedInput(f"{description}: tensor {name} is missing")
            if tuple(weights[name].shape) != shape:
                raise RefusedInput(f"{description}: tensor {name} is {list(weights[name].shape)}, the network its "
                                   f"metadata describes needs {list(shape)}")

    def shapes(self):
        H, Dx, Dc = self.H, self.Dx, self.Te + self.Dobs
        shapes = {"inp.weight": (H, Dx), "inp.bias": (H,)}
        for i in range(self.N):
            shapes.update({f"blocks.{i}.film.weight": (2 * H, Dc), f"blocks.{i}.film.bias": (2 * H,),
                           f"blocks.{i}.ln.weight": (H,), f"blocks.{i}.ln.bias": (H,),
                           f"blocks.{i}.l1.weight": (H, H), f"blocks.{i}.l1.bias": (H,),
                           f"blocks.{i}.l2.weight": (H, H), f"blocks.{i}.l2.bias": (H,)})
        shapes.update({"ln.weight": (H,), "ln.bias": (H,), "out.weight": (Dx, H), "out.bias": (Dx,)})
        return shapes

    @property
    def parameters(self):
        return sum(int(np.prod(shape)) for shape in self.shapes().values())

    @property
    def name(self):
        return (f"ResMLPFiLM H={self.H} blocks={self.N} Te={self.Te} To={self.To} Do={self.Do} Tp={self.Tp} "
                f"Da={self.Da}")

    @classmethod
    def reference(cls, seed=0):
        """The reference network's sizes with random weights (uniform in ±1/sqrt(fan_in), LayerNorm 1 and 0): the
        figures depend on the sizes, not on the values, so these are numpy's draws, not flowpolicy's."""
        network = cls.__new__(cls)
        sizes = REFERENCE
        network.description = "the reference network"
        network.To, network.Do, network.Tp, network.Da = sizes["To"], sizes["Do"], sizes["Tp"], sizes["Da"]
        network.H, network.N, network.Te = sizes["hidden"], sizes["blocks"], sizes["time_embedding"]
        network.Dx, network.Dobs = network.Tp * network.Da, network.To * network.Do
        generator = np.random.default_rng(seed)
        weights = {}
        for name, shape in network.shapes().items():
            if ".ln." in name or name.startswith("ln."):
                weights[name] = np.full(shape, 1.0 if name.endswith("weight") else 0.0, np.float32)
            else:
                fan_in = network.shapes()[name.rsplit(".", 1)[0] + ".weight"][1]
                bound = 1 / math.sqrt(fan_in)
                weights[name] = generator.uniform(-bound, bound, shape).astype(np.float32)
        network.weights = weights
        network.normalizers = None
        return network

    @classmethod
    def load(cls, path):
        """A low-dimensional single-network flowpolicy checkpoint; refuses anything else in one line."""
        try:
            with safe_open(path, framework="numpy") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception as error:  # safetensors reports a missing, damaged or foreign file as its own error types
            raise RefusedInput(f"{path}: not a readable safetensors file ({str(error).splitlines()[0]})") from None
        if metadata.get("format") != "flowpolicy" or metadata.get("architecture") != "ResMLPFiLM":
            raise RefusedInput(f"{path}: not a flowpolicy ResMLPFiLM checkpoint (format {metadata.get('format')!r}, "
                               f"architecture {metadata.get('architecture')!r})")
        if "cameras" in metadata:
            cameras = ", ".join(camera["name"] for camera in json.loads(metadata["cameras"]))
            raise RefusedInput(f"{path}: a policy with cameras ({cameras}); only low-dimensional policies are built as "
                               "ONNX graphs here")
        if "residual" in metadata:
            raise RefusedInput(f"{path}: has a residual head (method {metadata.get('method')}); only the plain "
                               "velocity network is built as an ONNX graph here")
        if "chain" in metadata or "network" not in metadata:
            raise RefusedInput(f"{path}: a chain (Local Flow Matching) checkpoint; only single-network policies are "
                               "built as ONNX graphs here")
        try:
            sizes = json.loads(metadata["network"])
            To, Do, Tp, Da = (int(metadata[key]) for key in ("To", "obs_dim", "Tp", "action_dim"))
            hidden, blocks, time_embedding = sizes["hidden"], sizes["blocks"], sizes["time_embedding"]
            normalizers = tuple(Normalizer(tensors[f"normalizer.{name}.min"], tensors[f"normalizer.{name}.max"])
                                for name in ("observation", "action"))
        except (KeyError, ValueError) as error:
            raise RefusedInput(f"{path}: metadata or normalizer {error} is missing or not a number") from None
        if sizes.get("chunk_dimensions") != Tp * Da or sizes.get("observation_dimensions") != To * Do:
            raise RefusedInput(f"{path}: network sizes {sizes} do not match Tp*Da = {Tp * Da}, To*Do = {To * Do}")
        if time_embedding < 2 or time_embedding % 2:
            raise RefusedInput(f"{path}: the time embedding must be even, got {time_embedding}")
        weights = {name: tensor.astype(np.float32) for name, tensor in tensors.items()
                   if not name.startswith("normalizer.")}
        return cls(path, To, Do, Tp, Da, hidden, blocks, time_embedding, weights, normalizers)

    def frequencies(self):
        """f_i = exp(-ln(10000) i / (Te/2)), computed in double and rounded once, as SinusoidalTimeEmbedding does."""
        half = self.Te // 2
        return np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / half).astype(np.float32)


def build_graph(network, precision="fp32"):
    """v(t, x, o) as an ONNX model. fp32, or with every MatMul in float16 / bfloat16: its weight stored in that type,
    its input cast to it and its product cast back to float32; the time embedding, biases, LayerNorm, FiLM, Mish and
    the residual stream stay float32, as int8's quantized MatMuls leave them."""
    low = {"fp32": None, "fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}[precision]
    nodes, initializers = [], []

    def constant(name, array, element_type=TensorProto.FLOAT):
        array = np.ascontiguousarray(array, np.float32)
        if element_type == TensorProto.FLOAT:
            initializers.append(numpy_helper.from_array(array, name))
        elif element_type == TensorProto.FLOAT16:
            initializers.append(numpy_helper.from_array(array.astype(np.float16), name))
        else:  # bfloat16: the top 16 bits of the float32, rounded to nearest even
            bits = array.view(np.uint32).astype(np.uint64)
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
            initializers.append(helper.make_tensor(name, TensorProto.BFLOAT16, array.shape, rounded.tobytes(),
                                                   raw=True))
        return name

    def node(op, inputs, name, **attributes):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def linear(value, layer):
        weight = network.weights[f"{layer}.weight"].T  # [in, out]
        bias = constant(f"{layer}.bias", network.weights[f"{layer}.bias"])
        if low is None:
            product = node("MatMul", [value, constant(f"{layer}.weight.T", weight)], f"{layer}.matmul")
        else:
            value = node("Cast", [value], f"{layer}.input.cast", to=low)
            product = node("MatMul", [value, constant(f"{layer}.weight.T", weight, low)], f"{layer}.matmul")
            product = node("Cast", [product], f"{layer}.matmul.cast", to=TensorProto.FLOAT)
        return node("Add", [product, bias], f"{layer}.out")

    def layer_norm(value, layer):
        return node("LayerNormalization", [value, constant(f"{layer}.weight", network.weights[f"{layer}.weight"]),
                                           constant(f"{layer}.bias", network.weights[f"{layer}.bias"])],
                    f"{layer}.out", axis=-1, epsilon=1e-5)

    # The time embedding in float32, as SinusoidalTimeEmbedding: (1000 t) f_i, sines then cosines.
    initializers += [numpy_helper.from_array(np.array([1], np.int64), "axis1"),
                     numpy_helper.from_array(np.array(1000, np.float32), "time_scale"),
                     numpy_helper.from_array(network.frequencies()[None, :], "frequencies")]
    scaled = node("Mul", [node("Unsqueeze", ["t", "axis1"], "t.column"), "time_scale"], "t.scaled")
    argument = node("Mul", [scaled, "frequencies"], "temb.argument")
    parts = [node("Sin", [argument], "temb.sin"), node("Cos", [argument], "temb.cos")]
    if network.Dobs > 0:
        parts.append("o")
    c = node("Concat", parts, "condition", axis=1)
    one = constant("one", 1.0)
    h = linear("x", "inp")
    for i in range(network.N):
        block = f"blocks.{i}"
        film = linear(c, f"{block}.film")
        gamma, beta = f"{block}.gamma", f"{block}.beta"  # first H: scale, last H: shift
        nodes.append(helper.make_node("Split", [film], [gamma, beta], name=f"{block}.split", axis=1, num_outputs=2))
        y = node("Add", [node("Mul", [layer_norm(h, f"{block}.ln"), node("Add", [one, gamma], f"{block}.scale")],
                              f"{block}.scaled"), beta], f"{block}.modulated")
        y = linear(node("Mish", [y], f"{block}.mish1"), f"{block}.l1")
        y = linear(node("Mish", [y], f"{block}.mish2"), f"{block}.l2")
        h = node("Add", [h, y], f"{block}.residual")
    v = linear(node("Mish", [layer_norm(h, "ln")], "mish"), "out")
    nodes.append(helper.make_node("Identity", [v], ["v"], name="v"))
    inputs = [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["B"]),
              helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", network.Dx])]
    if network.Dobs > 0:
        inputs.append(helper.make_tensor_value_info("o", TensorProto.FLOAT, ["B", network.Dobs]))
    graph = helper.make_graph(nodes, "flowpolicy_resmlp_film", inputs,
                              [helper.make_tensor_value_info("v", TensorProto.FLOAT, ["B", network.Dx])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="flowpolicy tools/bench_onnx_reference.py")
    onnx.checker.check_model(model, full_check=True)
    return model


def identity_graph(network):
    """v = x with the network's inputs: what the Python loop and ORT's call cost on their own."""
    inputs = [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["B"]),
              helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", network.Dx])]
    if network.Dobs > 0:
        inputs.append(helper.make_tensor_value_info("o", TensorProto.FLOAT, ["B", network.Dobs]))
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["v"])], "identity", inputs,
                              [helper.make_tensor_value_info("v", TensorProto.FLOAT, ["B", network.Dx])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def has_vnni():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = set(handle.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni"})


def quantized(model):
    """The int8 model (see the module's doc) and a description of the choice."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    reduce_range = not has_vnni()
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process (shape inference) does not apply here
    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "fp32.onnx"), os.path.join(folder, "int8.onnx")
        onnx.save(model, source)
        quantize_dynamic(source, target, op_types_to_quantize=["MatMul"], per_channel=True,
                         reduce_range=reduce_range, weight_type=QuantType.QInt8)
        result = onnx.load(target)
    detail = (f"quantize_dynamic: MatMul weights QInt8 per output channel, activations uint8 per tensor at run time "
              f"(u8 x s8), reduce_range {str(reduce_range).lower()} ({'no ' if reduce_range else ''}VNNI)")
    return result, detail


def session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the quantized graph's shape-inference warnings are noise here
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


class ChunkSampler:
    """Integrates dx/dt = v(t, x, o) from t = 0 to 1 in K fixed steps for a batch of B chunks, as ODESolver.swift does
    in float32 (h = 1/K, t = k h, x += h v), with one `run_with_iobinding` per evaluation. The graph's inputs and output
    are bound once, per distinct t, to OrtValues that share the memory of preallocated numpy buffers: `state` (the x
    the network reads), `observation` and `velocity`."""

    def __init__(self, session, network, batch, steps, method="euler"):
        if method not in SOLVERS:
            raise RefusedInput(f"unknown solver {method!r}; flowpolicy's fixed-step solvers are {', '.join(SOLVERS)}")
        self.session, self.batch, self.steps, self.method = session, batch, steps, method
        self.state = np.zeros((batch, network.Dx), np.float32)
        self.velocity = np.zeros((batch, network.Dx), np.float32)
        self.observation = np.zeros((batch, network.Dobs), np.float32)
        self.x = np.zeros((batch, network.Dx), np.float32)  # midpoint and RK4: x while `state` holds a stage's y
        self.stages = [np.zeros((batch, network.Dx), np.float32) for _ in range(3)]
        self.scratch = np.zeros((batch, network.Dx), np.float32)
        self.h = np.float32(1) / np.float32(steps)
        self.values = [ort.OrtValue.ortvalue_from_numpy(array) for array in (self.state, self.velocity)]
        if network.Dobs > 0:
            self.values.append(ort.OrtValue.ortvalue_from_numpy(self.observation))
        self.bindings = {}
        half = np.float32(0.5) * self.h
        times = [np.float32(k) * self.h for k in range(steps)]
        self.euler = [self.binding(t) for t in times]
        if method != "euler":
            for t in times:
                self.binding(t + half)
                self.binding(t + self.h)

    def binding(self, t):
        t = np.float32(t)
        if t.tobytes() not in self.bindings:
            times = np.full(self.batch, t, np.float32)
            binding = self.session.io_binding()
            value = ort.OrtValue.ortvalue_from_numpy(times)
            binding.bind_ortvalue_input("t", value)
            binding.bind_ortvalue_input("x", self.values[0])
            binding.bind_ortvalue_output("v", self.values[1])
            if len(self.values) > 2:
                binding.bind_ortvalue_input("o", self.values[2])
            self.bindings[t.tobytes()] = (binding, value, times)  # the binding reads `times`: keep them alive
        return self.bindings[t.tobytes()][0]

    def evaluate(self, t, into=None):
        """v(t, state) into `velocity` (and a copy into `into`)."""
        self.session.run_with_iobinding(self.binding(t))
        if into is not None:
            np.copyto(into, self.velocity)

    def euler_chunk(self):
        """The timed path: K Euler steps on `state` in place."""
        run, h = self.session.run_with_iobinding, self.h
        state, velocity, scratch = self.state, self.velocity, self.scratch
        for binding in self.euler:
            run(binding)
            np.multiply(velocity, h, out=scratch)
            np.add(state, scratch, out=state)
        return state

    def integrate(self, x0):
        """x(1) [B, Dx] from x(0) = x0 with the sampler's method (a copy)."""
        h, half = self.h, np.float32(0.5) * self.h
        if self.method == "euler":
            np.copyto(self.state, x0)
            return self.euler_chunk().copy()
        x, (k1, k2, k3) = self.x, self.stages
        np.copyto(x, x0)
        for k in range(self.steps):
            t = np.float32(k) * h
            np.copyto(self.state, x)
            self.evaluate(t, into=k1)
            self.state[...] = x + half * k1
            if self.method == "midpoint":
                self.evaluate(t + half)
                x += h * self.velocity
                continue
            self.evaluate(t + half, into=k2)
            self.state[...] = x + half * k2
            self.evaluate(t + half, into=k3)
            self.state[...] = x + h * k3
            self.evaluate(t + h)
            x += (h / np.float32(6)) * (k1 + np.float32(2) * k2 + np.float32(2) * k3 + self.velocity)
        return x.copy()


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def time_chunks(model, network, args, noise, iterations=None, batch=None):
    """(p50 ms, p99 ms, chunks/s at `batch`) for one model, chunks as flowpolicy's `bench infer` times them: a noise
    draw into the chunk buffer, then K Euler steps. `iterations` and `batch` default to the command line's."""
    iterations, batch = iterations or args.iterations, batch or args.batch
    single = ChunkSampler(session(model, args.threads), network, 1, args.steps)

    def one_chunk():
        noise.standard_normal(out=single.state, dtype=np.float32)
        single.euler_chunk()

    for _ in range(WARMUP):
        one_chunk()
    latencies = []
    for _ in range(iterations):
        start = time.perf_counter()
        one_chunk()
        latencies.append((time.perf_counter() - start) * 1000)
    latencies.sort()
    batched = ChunkSampler(single.session, network, batch, args.steps)

    def batch_of_chunks():
        noise.standard_normal(out=batched.state, dtype=np.float32)
        batched.euler_chunk()

    batch_of_chunks()
    repeats = max(3, iterations // 50)  # as `flowpolicy bench infer`
    start = time.perf_counter()
    for _ in range(repeats):
        batch_of_chunks()
    rate = repeats * batch / (time.perf_counter() - start)
    return percentile(latencies, 0.5), percentile(latencies, 0.99), rate


def chunks_of(model, network, x0, o, steps, threads):
    """Euler chunks [B, Dx] from the noise x0 [B, Dx] under the normalized windows o [B, To*Do]."""
    sampler = ChunkSampler(session(model, threads), network, len(x0), steps)
    sampler.observation[...] = o
    return sampler.integrate(x0)


def reduced_model(name, model, network):
    """(model, detail) for a precision, or raises with the reason it cannot run."""
    if name == "fp32":
        return model, "the float32 graph as built (MatMul + Add, fused by ORT into Gemm)"
    if name == "int8":
        return quantized(model)
    kind = {"bf16": "bfloat16", "fp16": "float16"}[name]
    detail = (f"every MatMul in {kind} (weights stored {kind}, input cast to it, product cast to float32); the rest "
              "float32")
    return build_graph(network, name), detail


def bench(args):
    network = Network.load(args.checkpoint) if args.checkpoint else Network.reference()
    requested = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for name in requested:
        if name not in PRECISIONS:
            raise RefusedInput(f"unknown precision {name!r}; this tool knows {', '.join(PRECISIONS)}")
    if "fp32" not in requested:
        requested.insert(0, "fp32")  # the others' error is measured against it
    model = build_graph(network)
    generator = np.random.default_rng(args.seed)
    # The error against fp32: one batch of chunks from the same noise, the windows uniform over the normalized box.
    x0 = generator.standard_normal((args.batch, network.Dx), dtype=np.float32)
    o = generator.uniform(-1, 1, (args.batch, network.Dobs)).astype(np.float32)
    log(f"{network.name}: {network.parameters} parameters; onnxruntime {ort.__version__}, onnx {onnx.__version__}, "
        f"opset {OPSET}, {args.threads} thread(s), euler K={args.steps}")
    loop = identity_graph(network)
    p50, p99, _ = time_chunks(loop, network, args, generator, iterations=200, batch=1)
    python_loop = {"p50_ms": p50, "p99_ms": p99,
                   "note": "the same timed loop on an Identity graph (v = x): Python and ORT call overhead per chunk, "
                           "included in every precision's figures"}
    reference_chunks = None
    entries = {}
    for name in requested:
        entry = {"supported": True, "reason": None, "detail": None, "p50_ms": None, "p99_ms": None,
                 "batch": args.batch, "chunks_per_second": None, "max_abs_error_vs_fp32": None}
        try:
            reduced, entry["detail"] = reduced_model(name, model, network)
            chunks = chunks_of(reduced, network, x0, o, args.steps, args.threads)
        except Exception as error:  # ORT refuses a graph it has no kernels for with its own exception types
            if name == "fp32":
                raise
            entry.update(supported=False, reason=f"onnxruntime {ort.__version__} CPUExecutionProvider cannot run the "
                                                 f"{name} graph: {str(error).splitlines()[0]}")
            log(f"{name}: unsupported ({entry['reason']})")
            entries[name] = entry
            continue
        if name == "fp32":
            reference_chunks = chunks
        log(f"{name}: timing {args.iterations} chunks at batch 1, then batch {args.batch}")
        p50, p99, rate = time_chunks(reduced, network, args, generator)
        entry.update(p50_ms=p50, p99_ms=p99, chunks_per_second=rate,
                     max_abs_error_vs_fp32=float(np.abs(chunks - reference_chunks).max()))
        log(f"{name}: batch 1 p50 {p50:.3f} ms p99 {p99:.3f} ms; batch {args.batch} {rate:.0f} chunks/s; largest chunk "
            f"error against fp32 {entry['max_abs_error_vs_fp32']:.3g}")
        entries[name] = entry
    report = {
        "name": f"onnxruntime {ort.__version__} (onnx {onnx.__version__}, opset {OPSET}) CPUExecutionProvider",
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "opset": OPSET,
        "network": network.name,
        "checkpoint": args.checkpoint,
        "parameters": network.parameters,
        "solver": "euler",
        "steps": args.steps,
        "threads": args.threads,
        "iterations": args.iterations,
        "warmup": WARMUP,
        "error_unit": "normalized action units, largest |chunk - fp32 chunk| over one batch of chunks from the same "
                      "noise, windows uniform in [-1, 1]",
        "python_loop": python_loop,
        "precisions": {name: entries[name] for name in PRECISIONS if name in entries},
    }
    print(json.dumps(report, indent=2))
    return 0


def check(args):
    network = Network.load(args.checkpoint)
    observation_normalizer, action_normalizer = network.normalizers
    with open(args.samples, encoding="utf-8") as handle:
        summary = json.load(handle)
    try:
        method, steps = summary["solver"].split(" K=")
        steps = int(steps)
    except ValueError:
        raise RefusedInput(f"{args.samples}: solver {summary['solver']!r} is not a fixed-step solver (an adaptive "
                           "sample cannot be replayed step for step)") from None
    chunks = np.array(summary["chunks"], dtype=np.float32)
    count = len(chunks)
    window = np.array(summary["observationWindow"], dtype=np.float32).reshape(network.To, network.Do)
    # flowpolicy draws the noise of all chunks as one stream of count * Tp * Da Gaussians from the seed.
    x0 = RandomSource(summary["seed"]).gaussians(count * network.Dx).reshape(count, network.Dx)
    o = np.broadcast_to(observation_normalizer.normalize(window).reshape(1, -1), (count, network.Dobs))
    model = build_graph(network)
    sampler = ChunkSampler(session(model, 1), network, count, steps, method)
    sampler.observation[...] = o
    normalized = sampler.integrate(x0)
    Da = network.Da
    actions = action_normalizer.denormalize(normalized.reshape(count, -1, Da)).reshape(chunks.shape)
    flowpolicy_normalized = action_normalizer.normalize(chunks.reshape(count, -1, Da)).reshape(chunks.shape)
    difference = np.abs(normalized - flowpolicy_normalized)
    world = np.abs(actions - chunks)
    verdict = "match" if difference.max() <= args.tolerance else "MISMATCH"
    print(f"{count} chunks, {method} K={steps}: largest |flowpolicy - onnxruntime fp32| = {difference.max():.3g} "
          f"normalized (mean {difference.mean():.3g}; tolerance {args.tolerance:g}), {world.max():.3g} in action "
          f"units (action scale {np.abs(chunks).max():.3g}): {verdict}")
    int8_model, _ = quantized(model)
    int8_sampler = ChunkSampler(session(int8_model, 1), network, count, steps, method)
    int8_sampler.observation[...] = o
    int8_error = np.abs(int8_sampler.integrate(x0) - normalized).max()
    print(f"onnxruntime int8 against onnxruntime fp32 on the same noise: largest difference {int8_error:.3g} "
          "normalized (information)")
    return 0 if verdict == "match" else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("bench", help="Time ONNX Runtime on the velocity network at each precision (JSON).",
                            description="Time whole action chunks (noise, then K Euler steps) through ONNX Runtime at "
                                        "each precision; one JSON object on stdout, progress on stderr.")
    b.add_argument("--checkpoint", help="A low-dimensional flowpolicy checkpoint (default: the reference network of "
                                        "`flowpolicy bench infer`, random weights).")
    b.add_argument("--steps", type=int, default=10, help="Euler steps K per chunk. (default: %(default)s)")
    b.add_argument("--iterations", type=int, default=500,
                   help="Timed chunks at batch 1, after %d warm-up chunks. (default: %%(default)s)" % WARMUP)
    b.add_argument("--batch", type=int, default=64, help="Batch of the throughput figure. (default: %(default)s)")
    b.add_argument("--threads", type=int, default=1, help="ORT intra-op threads. (default: %(default)s)")
    b.add_argument("--precisions", default="fp32,bf16,int8",
                   help=f"Comma-separated, of {', '.join(PRECISIONS)}. (default: %(default)s)")
    b.add_argument("--seed", type=int, default=0, help="Seed of the noise and windows. (default: %(default)s)")
    b.set_defaults(run=bench)
    c = commands.add_parser("check", help="Compare ORT's fp32 chunks with `flowpolicy sample --json`'s.",
                            description="Rebuild a checkpoint's network as an ONNX graph, integrate flowpolicy's "
                                        "seeded noise with the report's solver, and compare with the chunks "
                                        "flowpolicy sampled. Exits 1 above the tolerance.")
    c.add_argument("checkpoint", help="The checkpoint `flowpolicy sample` read.")
    c.add_argument("samples", help="The report `flowpolicy sample --json` wrote.")
    c.add_argument("--tolerance", type=float, default=1e-4,
                   help="Largest difference allowed, in normalized action units. (default: %(default)s)")
    c.set_defaults(run=check)
    args = parser.parse_args()
    for option in ("steps", "iterations", "batch", "threads"):
        if getattr(args, option, 1) < 1:
            parser.error(f"--{option} must be at least 1, got {getattr(args, option)}")
    try:
        sys.exit(args.run(args))
    except (RefusedInput, OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    except KeyError as error:
        sys.exit(f"error: {error} is missing: give a flowpolicy checkpoint and a `flowpolicy sample --json` report")


if __name__ == "__main__":
    main()
