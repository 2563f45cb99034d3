"""ONNX graphs with the exact signatures of models we cannot download here.

`inswapper_like` has inswapper_128's inputs (`target` [1,3,128,128], `source` [1,512]),
its output ([1,3,128,128] in 0..1) and its emap as the graph's last initializer, so the
real loading, batch-dim patching, batching and paste-back code runs on it. `width` and
`depth` scale its compute: tiny for tests, heavy for GPU timing.

`xseg_like` and `bisenet_like` have the mask models' signatures (an occluder's NHWC
`input` [1,256,256,3] -> [1,256,256,1], a face parser's `input` [1,3,512,512] -> 19 scores a
pixel): the first marks one pure colour as an occluder, the second labels each pixel by the
nearest colour of a palette, so a test paints what they see.

`swapper_like` has any swapper family's inputs (`source`: an identity vector or a source
crop; `target` [1,3,S,S]) and output (`output` [1,3,S,S] in -1..1 or 0..1, hyperswap's extra
`mask`), `converter_like` an embedding converter's and `enhancer_like` a face enhancer's
(`input`, CodeFormer's `weight`, `output`); all compute so little that a test can predict
every output pixel in NumPy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.enhancer import ENHANCERS
from models.registry import MODELS
from models.swap_models import SWAP_MODELS, Hyperswap

LATENT = 512
SIDE = 128


def _conv(name: str, inputs: list[str], output: str) -> onnx.NodeProto:
    return helper.make_node("Conv", inputs, [output], name=name, pads=[1, 1, 1, 1], kernel_shape=[3, 3])


def inswapper_like(path: Path, width: int = 4, depth: int = 1, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int, scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    initializers = [
        weight("project", LATENT, width, scale=0.05),
        numpy_helper.from_array(np.array([2, 3], np.int64), "spatial_axes"),
        weight("conv_in", width, 3, 3, 3, scale=0.3),
    ]
    nodes = [
        helper.make_node("MatMul", ["source", "project"], ["identity"]),
        helper.make_node("Unsqueeze", ["identity", "spatial_axes"], ["identity_map"]),
        _conv("conv_in", ["target", "conv_in"], "h0"),
        helper.make_node("Add", ["h0", "identity_map"], ["h0_id"]),
        helper.make_node("Relu", ["h0_id"], ["a0"]),
    ]
    last = "a0"
    for layer in range(1, depth):
        initializers.append(weight(f"conv_{layer}", width, width, 3, 3, scale=(2.0 / (9 * width)) ** 0.5))
        nodes += [_conv(f"conv_{layer}", [last, f"conv_{layer}"], f"h{layer}"), helper.make_node("Relu", [f"h{layer}"], [f"a{layer}"])]
        last = f"a{layer}"
    initializers.append(weight("conv_out", 3, width, 3, 3, scale=0.2))
    nodes += [_conv("conv_out", [last, "conv_out"], "logits"), helper.make_node("Sigmoid", ["logits"], ["output"])]
    initializers.append(weight("emap", LATENT, LATENT, scale=LATENT ** -0.5))  # last, as in the real file
    graph = helper.make_graph(
        nodes,
        "inswapper_like",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, SIDE, SIDE]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, LATENT])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        initializers,
    )
    return _save(graph, path)


def swapper_like(path: Path, source_shape: tuple[int, ...] = (LATENT,), side: int = 256, signed: bool = True,
                 mask: bool = False, seed: int = 0, positional: bool = False) -> Path:
    """A swapper family's signature: `source` (1, *source_shape), `target` (1, 3, side, side);
    `output` (1, 3, side, side) = tanh (signed families) or sigmoid of `target / 2 + shift`,
    where `shift` tints each channel by the identity (`source @ project`, or for an image source
    its channel means @ project); `mask` adds hyperswap's second output. `positional` adds a
    fixed tint that differs from pixel to pixel, so what comes out depends on where each pixel
    sat in the input (otherwise any shuffle of the pixels in and its inverse out, a wrong pixel
    boost split among them, would give the same crop)."""
    rng = np.random.default_rng(seed)
    project = (rng.standard_normal((source_shape[0], 3)) * 0.5).astype(np.float32)
    identity = "source"
    nodes = []
    if len(source_shape) == 3:  # a source crop: its colour, not its pixels, tints the output
        nodes.append(helper.make_node("ReduceMean", ["source"], ["source_colour"], axes=[2, 3], keepdims=0))
        identity = "source_colour"
    nodes += [
        helper.make_node("MatMul", [identity, "project"], ["shift"]),
        helper.make_node("Unsqueeze", ["shift", "spatial_axes"], ["shift_map"]),
        helper.make_node("Mul", ["target", "half"], ["half_target"]),
        helper.make_node("Add", ["half_target", "shift_map"], ["tinted"]),
    ]
    initializers = [numpy_helper.from_array(project, "project"),
                    numpy_helper.from_array(np.array([2, 3], np.int64), "spatial_axes"),
                    numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    raw = "tinted"
    if positional:
        pattern = (rng.standard_normal((1, 3, side, side)) * 0.5).astype(np.float32)
        initializers.append(numpy_helper.from_array(pattern, "pattern"))
        nodes.append(helper.make_node("Add", ["tinted", "pattern"], ["raw"]))
        raw = "raw"
    nodes.append(helper.make_node("Tanh" if signed else "Sigmoid", [raw], ["output"]))
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, side, side])]
    if mask:
        nodes.append(helper.make_node("ReduceMean", ["output"], ["mask"], axes=[1], keepdims=1))
        outputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, side, side]))
    graph = helper.make_graph(
        nodes,
        "swapper_like",
        [helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, *source_shape]),
         helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, side, side])],
        outputs,
        initializers,
    )
    return _save(graph, path)


def converter_like(path: Path, seed: int = 0) -> Path:
    """An embedding converter's signature (crossface_*): `input` (1, 512) -> (1, 512), an affine
    map: with its bias, the input's scale shows in the output (fed a normalised embedding instead
    of the raw one, it gives another identity)."""
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((LATENT, LATENT)) * 0.1).astype(np.float32)
    bias = (rng.standard_normal(LATENT) * 0.5).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "weight"], ["product"]), helper.make_node("Add", ["product", "bias"], ["output"])],
        "converter_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, LATENT])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, LATENT])],
        [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    return _save(graph, path)


def family_like(directory: Path, name: str) -> Path:
    """swapper family `name`'s file (models/swap_models.py: its crop size, output range and
    `source` shape), with its converter when it has one, in `directory`."""
    family = SWAP_MODELS[name]
    if getattr(family, "converter", None):
        converter_like(directory / f"{family.converter}.onnx")
    crop = family.crop
    return swapper_like(directory / f"{name}.onnx", family.source_shape, crop.size, crop.signed_output,
                        mask=family is Hyperswap)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def enhancer_like(path: Path, side: int = 512, weight: bool = False, seed: int = 0) -> Path:
    """A face enhancer's signature: `input` (1, 3, side, side) in -1..1 -> `output` (1, 3, side,
    side) in -1..1, and with `weight`, CodeFormer's second input `weight` (1,) float64.

    Computes tanh of a sharpened input whose channels are mixed unevenly (so red and blue
    cannot be swapped unnoticed) plus a per-channel tint times `weight` (so the fidelity fed
    shows in the output): a test can see where restored faces were pasted and predict them.
    """
    rng = np.random.default_rng(seed)
    kernel = np.zeros((3, 3, 3, 3), np.float32)
    for channel in range(3):
        kernel[channel, channel] = [[0, -0.5, 0], [-0.5, 3.0, -0.5], [0, -0.5, 0]]
    kernel[:, :, 1, 1] += rng.uniform(-0.4, 0.4, (3, 3)).astype(np.float32)
    nodes = [_conv("sharpen", ["input", "kernel"], "sharp")]
    initializers = [numpy_helper.from_array(kernel, "kernel")]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])]
    last = "sharp"
    if weight:
        inputs.append(helper.make_tensor_value_info("weight", TensorProto.DOUBLE, [1]))
        initializers.append(numpy_helper.from_array(np.array([0.8, -0.6, 0.4], np.float32).reshape(1, 3, 1, 1), "tint"))
        nodes += [helper.make_node("Cast", ["weight"], ["weight_float"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", ["tint", "weight_float"], ["shift"]),
                  helper.make_node("Add", ["sharp", "shift"], ["shifted"])]
        last = "shifted"
    nodes.append(helper.make_node("Tanh", [last], ["output"]))
    graph = helper.make_graph(nodes, "enhancer_like", inputs,
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, side, side])],
                              initializers)
    return _save(graph, path)


def enhancer_file_like(directory: Path, name: str, seed: int = 0) -> Path:
    """Enhancer `name`'s file (models/enhancer.py: its crop size, whether it takes `weight`) in `directory`."""
    model = ENHANCERS[name]
    return enhancer_like(directory / MODELS[name].filename, model.crop.size, model.takes_weight, seed)


OCCLUDER_BGR = (255, 0, 0)  # pure blue: what `xseg_like` takes for an occluder


def xseg_like(path: Path, occluder_bgr: tuple[int, int, int] = OCCLUDER_BGR) -> Path:
    """An occluder's signature (xseg_1/2/3): `input` (1, 256, 256, 3) NHWC, BGR / 255 ->
    `output` (1, 256, 256, 1), 1 where the face is visible: `clip(8 * sum |x - c|, 0, 1)` for
    the occluder colour c, so a pixel of exactly that colour is 0 (occluded) and any pixel a
    sixteenth of the range away from it in one channel is 1. Fed RGB, or 0..255, blue is not
    seen as an occluder."""
    colour = np.array(occluder_bgr, np.float32) / 255.0
    graph = helper.make_graph(
        [helper.make_node("Sub", ["input", "colour"], ["difference"]),
         helper.make_node("Abs", ["difference"], ["distance"]),
         helper.make_node("ReduceSum", ["distance", "channel_axis"], ["summed"], keepdims=1),
         helper.make_node("Mul", ["summed", "gain"], ["scaled"]),
         helper.make_node("Clip", ["scaled", "zero", "one"], ["output"])],
        "xseg_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 256, 256, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 256, 256, 1])],
        [numpy_helper.from_array(colour, "colour"), numpy_helper.from_array(np.array([3], np.int64), "channel_axis"),
         numpy_helper.from_array(np.array(8.0, np.float32), "gain"),
         numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
         numpy_helper.from_array(np.array(1.0, np.float32), "one")],
    )
    return _save(graph, path)


def parser_palette(seed: int = 0) -> np.ndarray:
    """The 19 RGB colours (0..1) `bisenet_like` labels by: label i is the pixels nearest colour i."""
    return np.random.default_rng(seed).uniform(0.0, 1.0, (19, 3)).astype(np.float32)


def bisenet_like(path: Path, palette: np.ndarray | None = None) -> Path:
    """A face parser's signature (bisenet_resnet_18/34): `input` (1, 3, 512, 512), RGB / 255
    normalised by ImageNet's mean and std -> `output` (1, 19, 512, 512), per label
    `2 p.rgb - |p|^2` for its palette colour p (`parser_palette`): the nearest colour scores
    highest. One 1x1 convolution, the normalisation undone in its weights; fed BGR or
    unnormalised pixels, the labels move."""
    palette = parser_palette() if palette is None else palette
    mean, std = np.array((0.485, 0.456, 0.406), np.float32), np.array((0.229, 0.224, 0.225), np.float32)
    weight = (2.0 * palette * std)[:, :, None, None].astype(np.float32)
    bias = (2.0 * palette @ mean - (palette ** 2).sum(axis=1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "weight", "bias"], ["output"], kernel_shape=[1, 1])],
        "bisenet_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 512, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 19, 512, 512])],
        [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    return _save(graph, path)
