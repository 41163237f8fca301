"""Exports of a deploy network for the runtimes users already have: ONNX and ncnn.

Both are written node by node from the fused plain network (conv, PReLU, ..., conv, PixelShuffle, plus the
nearest-upsampled input), so no tracing exporter (torch.onnx, pnnx, onnx2ncnn) is involved and the graph is
exactly the deploy network's. Input: RGB in [0, 1], NCHW; any height and width.

- ONNX: opset 17; input `input`, output `output`, dynamic batch, height and width; PixelShuffle is
  DepthToSpace in CRD mode (PyTorch's channel order), the upsampled input a nearest Resize; metadata names
  the scale, architecture and source. `half` stores weights, input and output as float16.
- ncnn: `.param` (text) and `.bin` as realesrgan-ncnn-vulkan and Upscayl load them (blobs `data` in and
  `output` out, as in the released Real-ESRGAN ncnn models); convolution weights stored as float16 like
  those models, biases and PReLU slopes as float32 (ncnn's layer loaders read them so).

The ncnn pair is also read back (`read_ncnn`): the compact models Upscayl and realesrgan-ncnn-vulkan ship
(realesr-animevideov3 among them) exist only in that form, and reading them lets `repsr eval` and `-m` score
and run them beside ours.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import UserError
from .deploy import PlainNet
from .files import atomic_write

ONNX_OPSET = 17
NCNN_MAGIC = 7767517
NCNN_FP16_TAG = 0x01306B47  # ncnn's tag before float16 weight data
NCNN_FP32_TAG = 0  # a zero tag: raw float32 weight data follows


def onnx_model(net: PlainNet, half: bool = False, source: str = ""):
    """The network as an onnx.ModelProto."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise UserError("ONNX export needs the onnx package: pip install 'repsr[export]'") from None
    dtype = np.float16 if half else np.float32
    elem = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    s = net.scale
    nodes, inits, blob = [], [], "input"
    for i, (kind, a, b) in enumerate(net.layers()):
        out = f"body_{i}"
        if kind == "conv":
            inits += [numpy_helper.from_array(a.astype(dtype), f"body.{i}.weight")]
            inits += [numpy_helper.from_array(b.astype(dtype), f"body.{i}.bias")]
            nodes.append(
                helper.make_node(
                    "Conv", [blob, f"body.{i}.weight", f"body.{i}.bias"], [out], kernel_shape=[3, 3], pads=[1, 1, 1, 1]
                )
            )
        else:
            inits.append(numpy_helper.from_array(a.reshape(-1, 1, 1).astype(dtype), f"body.{i}.weight"))
            nodes.append(helper.make_node("PRelu", [blob, f"body.{i}.weight"], [out]))
        blob = out
    nodes.append(helper.make_node("DepthToSpace", [blob], ["shuffled"], blocksize=s, mode="CRD"))
    inits.append(numpy_helper.from_array(np.array([1, 1, s, s], np.float32), "up_scales"))
    nodes.append(
        helper.make_node(
            "Resize",
            ["input", "", "up_scales"],
            ["upsampled"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
    )
    nodes.append(helper.make_node("Add", ["shuffled", "upsampled"], ["output"]))
    graph = helper.make_graph(
        nodes,
        f"repsr_x{s}",
        [helper.make_tensor_value_info("input", elem, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("output", elem, ["batch", 3, f"height*{s}", f"width*{s}"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="repsr")
    model.ir_version = 8  # the ONNX IR of opset 17, readable by older runtimes
    meta = {"scale": str(s), "architecture": "SRVGGNetCompact", "source": source, "input_range": "0-1 RGB"}
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def write_onnx(net: PlainNet, path: Path, half: bool = False, source: str = "") -> None:
    model = onnx_model(net, half, source)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(model.SerializeToString()))


def ncnn_files(net: PlainNet, half: bool = True) -> tuple[str, bytes]:
    """(param text, bin bytes) of the network; convolution weights in float16 as the released files have them,
    or (half=False) in float32, as our own ncnn engine runs them."""
    s, layers = net.scale, net.layers()
    lines, weights = [], bytearray()
    lines.append("Input data 0 1 data")
    lines.append("Split splitncnn_0 1 2 data data_0 data_1")
    blob = "data_0"
    for i, (kind, a, b) in enumerate(layers):
        out = f"body_{i}"
        if kind == "conv":
            cout, cin = a.shape[:2]
            # 0=num_output 1=kernel_w 4=pad 5=bias_term 6=weight_data_size (ncnn's Convolution parameters)
            lines.append(f"Convolution conv_{i} 1 1 {blob} {out} 0={cout} 1=3 4=1 5=1 6={a.size}")
            data = a.astype("<f2" if half else "<f4").tobytes()
            tag = NCNN_FP16_TAG if half else NCNN_FP32_TAG
            weights += struct.pack("<I", tag) + data + b"\0" * (-len(data) % 4)
            weights += b.astype("<f4").tobytes()
        else:
            lines.append(f"PReLU prelu_{i} 1 1 {blob} {out} 0={a.size}")
            weights += a.astype("<f4").tobytes()
        blob = out
    lines.append(f"PixelShuffle shuffle 1 1 {blob} shuffled 0={s}")  # 1=0: PyTorch's channel order (default)
    lines.append(f"Interp upsample 1 1 data_1 upsampled 0=1 1={float(s)} 2={float(s)}")  # 0=1: nearest
    lines.append("BinaryOp add 2 1 shuffled upsampled output 0=0")  # 0=0: add
    blobs = {tok for ln in lines for tok in ln.split()[4:] if "=" not in tok}
    param = f"{NCNN_MAGIC}\n{len(lines)} {len(blobs)}\n" + "\n".join(lines) + "\n"
    return param, bytes(weights)


def write_ncnn(net: PlainNet, param_path: Path, bin_path: Path) -> None:
    """Both files appear together or not at all: the second rename failing removes the first file."""
    param, data = ncnn_files(net)
    bin_path = Path(bin_path)
    atomic_write(bin_path, lambda tmp: Path(tmp).write_bytes(data))
    try:
        atomic_write(Path(param_path), lambda tmp: Path(tmp).write_text(param))
    except BaseException:
        bin_path.unlink(missing_ok=True)
        raise


def _ncnn_params(tokens: list[str]) -> dict[int, str]:
    """A layer line's `k=v` parameters (ncnn's integer keys)."""
    return {int(k): v for k, _, v in (t.partition("=") for t in tokens if "=" in t)}


def read_ncnn(param_path: Path) -> dict[str, np.ndarray]:
    """The SRVGGNetCompact state dict (`body.N.weight/bias`) of an ncnn `.param` and the `.bin` beside it.

    Only the compact graph is accepted (conv 3x3 / PReLU pairs, a last conv, PixelShuffle, a nearest
    upsample of the input added): anything else is refused with the layer that does not fit."""
    param_path = Path(param_path)
    bin_path = param_path.with_suffix(".bin")
    try:
        lines = param_path.read_text(encoding="ascii").split("\n")
        data = bin_path.read_bytes()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the ncnn pair ({exc.__class__.__name__}: {exc})", param_path) from None
    if not lines or lines[0].strip() != str(NCNN_MAGIC):
        raise UserError(f"not an ncnn .param file (first line is not {NCNN_MAGIC})", param_path)
    state: dict[str, np.ndarray] = {}
    offset, index, tail = 0, 0, []

    def take(count: int, dtype: str) -> np.ndarray:
        nonlocal offset
        size = count * np.dtype(dtype).itemsize
        if offset + size > len(data):
            raise UserError("the .bin ends before the weights the .param names (truncated?)", bin_path)
        values = np.frombuffer(data, dtype, count, offset).astype(np.float32)
        offset += size + (-size % 4)  # ncnn aligns each blob to 4 bytes
        return values

    for line in lines[2:]:
        tokens = line.split()
        if not tokens or tokens[0] in ("Input", "Split"):
            continue
        kind, p = tokens[0], _ncnn_params(tokens)
        if tail and kind in ("Convolution", "PReLU"):
            raise UserError(f"layer {tokens[1]} ({kind}) after the upsampling: not a compact model", param_path)
        if kind == "Convolution":
            if p.get(1, "1") != "3" or p.get(4, "0") != "1" or p.get(5, "0") != "1":
                raise UserError(f"layer {tokens[1]}: only 3x3 convolutions with padding 1 and a bias", param_path)
            cout, size = int(p[0]), int(p[6])
            tag = int(np.frombuffer(data[offset : offset + 4], "<u4")[0]) if offset + 4 <= len(data) else -1
            offset += 4
            if tag not in (NCNN_FP16_TAG, NCNN_FP32_TAG):
                raise UserError(f"layer {tokens[1]}: weight storage tag {tag:#x} (quantised?) is not read", param_path)
            weight = take(size, "<f2" if tag == NCNN_FP16_TAG else "<f4")
            state[f"body.{index}.weight"] = weight.reshape(cout, size // (cout * 9), 3, 3)
            state[f"body.{index}.bias"] = take(cout, "<f4")
        elif kind == "PReLU":
            state[f"body.{index}.weight"] = take(int(p.get(0, "1")), "<f4")
        elif kind in ("PixelShuffle", "Interp", "BinaryOp"):
            if kind == "Interp" and tail == ["PixelShuffle", "Interp", "BinaryOp"]:
                raise UserError(
                    f"the network's output is resized by {float(p.get(1, '1')):g} after it; only plain compact graphs"
                    " are read: use the model of the network's own scale (and -s for the factor you want)",
                    param_path,
                )
            tail.append(kind)
            continue
        else:
            raise UserError(f"layer {tokens[1]} of type {kind} is not part of a compact model", param_path)
        index += 1
    if tail != ["PixelShuffle", "Interp", "BinaryOp"]:
        raise UserError("the graph does not end in PixelShuffle + upsampled input: not a compact model", param_path)
    return state
