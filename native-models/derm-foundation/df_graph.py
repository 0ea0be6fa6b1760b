"""Shared by export_onnx.py and parity.py: load the Derm Foundation SavedModel, freeze its serving
signature, find where image decoding ends and the network begins, and evaluate either side.

Derm Foundation's `serving_default` signature takes serialized tf.train.Example protos (feature
`image/encoded` = PNG/JPEG bytes) and decodes and resizes inside the graph. ONNX has no image
decoder, so we cut the graph at the tensor that feeds the network's first convolution (the decoded,
resized and normalised image batch, NHWC float32) and export everything after it.
"""

from __future__ import annotations

import io
import sys
from typing import NoReturn

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

CONV_OPS = {"Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "Conv3D"}
# Ops between the image and the first convolution that are part of the network, not of preprocessing
# (BiT pads before its 7x7 root convolution); the cut is placed above them.
PASS_THROUGH_OPS = {"Pad", "PadV2", "MirrorPad", "Identity"}


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def tensor_parts(name: str) -> tuple[str, int]:
    """'node:1' -> ('node', 1); 'node' -> ('node', 0); control inputs are not tensors."""
    if name.startswith("^"):
        raise ValueError(f"{name} is a control input, not a tensor")
    node, _, index = name.partition(":")
    return node, int(index) if index else 0


def tensor_name(name: str) -> str:
    node, index = tensor_parts(name)
    return f"{node}:{index}"


def make_example(image_bytes: bytes) -> bytes:
    """The serving input: a tf.train.Example with one feature, image/encoded."""
    feature = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def png_bytes(image) -> bytes:
    """A PIL image as RGB PNG bytes, as the model card's example sends it."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


class DermFoundationGraph:
    """The SavedModel's serving signature, frozen, with the cut between decoding and the network."""

    def __init__(self, model_dir: str, cut_tensor: str | None = None):
        print(f"loading SavedModel {model_dir} …", file=sys.stderr)
        try:
            loaded = tf.saved_model.load(model_dir)
        except (OSError, ValueError) as error:
            fail(f"cannot load a SavedModel from {model_dir}: {error}")
        if "serving_default" not in loaded.signatures:
            fail(f"{model_dir} has no serving_default signature (found: {', '.join(loaded.signatures) or 'none'})")
        self._loaded = loaded  # keeps the variables alive while the signature is used
        self.signature = loaded.signatures["serving_default"]
        if "embedding" not in self.signature.structured_outputs:
            fail(f"serving_default has no 'embedding' output (found: {', '.join(self.signature.structured_outputs)})")

        print("freezing the serving graph (variables become constants) …", file=sys.stderr)
        # lower_control_flow=False keeps tf.map_fn's per-image decoding as one While op, so the main
        # graph stays small and cutting below it removes decoding entirely; aggressive_inlining
        # inlines the Keras call functions so the network's ops appear in the main graph.
        frozen = convert_variables_to_constants_v2(self.signature, lower_control_flow=False, aggressive_inlining=True)
        self.graph_def = frozen.graph.as_graph_def()
        string_inputs = [t for t in frozen.inputs if t.dtype == tf.string]
        if len(string_inputs) != 1:
            fail(f"expected one string input (serialized Examples) in the frozen signature, found {[t.name for t in frozen.inputs]}")
        self.input_name = string_inputs[0].name
        structured = frozen.structured_outputs
        if isinstance(structured, dict) and "embedding" in structured:
            self.embedding_name = structured["embedding"].name
        else:
            keys = sorted(self.signature.structured_outputs)
            self.embedding_name = frozen.outputs[keys.index("embedding")].name

        def _imports():
            tf.compat.v1.import_graph_def(self.graph_def, name="")

        self._wrapped = tf.compat.v1.wrap_function(_imports, [])
        self.graph = self._wrapped.graph
        self.cut_name = tensor_name(cut_tensor) if cut_tensor else self._find_cut()
        try:
            cut = self.graph.get_tensor_by_name(self.cut_name)
        except (KeyError, ValueError) as error:
            fail(f"cut tensor {self.cut_name} is not in the frozen graph: {error}")
        if cut.dtype != tf.float32:
            fail(f"cut tensor {self.cut_name} is {cut.dtype.name}, not float32; choose another with --cut-tensor (see --list-tensors)")
        self._to_cut = self._wrapped.prune(
            feeds=self.graph.get_tensor_by_name(self.input_name), fetches=cut
        )
        print(f"cut: {self.cut_name} (static shape {cut.shape}); output: {self.embedding_name}", file=sys.stderr)

    def _find_cut(self) -> str:
        """The tensor feeding the root convolution (one with no convolution upstream), above any Pad."""
        nodes = {node.name: node for node in self.graph_def.node}

        def data_inputs(node):
            return [name for name in node.input if not name.startswith("^")]

        def has_conv_upstream(start: str) -> bool:
            seen, stack = set(), [tensor_parts(start)[0]]
            while stack:
                name = stack.pop()
                if name in seen or name not in nodes:
                    continue
                seen.add(name)
                node = nodes[name]
                if node.op in CONV_OPS:
                    return True
                stack.extend(tensor_parts(i)[0] for i in data_inputs(node))
            return False

        convs = [node for node in self.graph_def.node if node.op in CONV_OPS]
        if not convs:
            fail("no convolution in the frozen main graph (the network may sit in an un-inlined function); "
                 "pass --cut-tensor explicitly (see --list-tensors)")
        roots = [node for node in convs if not has_conv_upstream(data_inputs(node)[0])]
        if len(roots) != 1:
            fail(f"expected one root convolution, found {[node.name for node in roots]}; pass --cut-tensor (see --list-tensors)")
        current = data_inputs(roots[0])[0]
        while nodes.get(tensor_parts(current)[0]) is not None and nodes[tensor_parts(current)[0]].op in PASS_THROUGH_OPS:
            current = data_inputs(nodes[tensor_parts(current)[0]])[0]
        return tensor_name(current)

    def list_tensors(self) -> None:
        """Prints every float32 rank-4 tensor with 3 channels in the main graph: candidates for --cut-tensor."""
        for op in self.graph.get_operations():
            for output in op.outputs:
                shape = output.shape
                if output.dtype == tf.float32 and shape.rank == 4 and shape[-1] == 3:
                    print(f"{output.name:70s} {op.type:24s} {shape}")

    def reference_embedding(self, image_bytes: bytes) -> np.ndarray:
        """Derm Foundation's own answer: the unmodified serving signature on one encoded image."""
        output = self.signature(inputs=tf.constant([make_example(image_bytes)]))
        return output["embedding"].numpy().reshape(-1).astype(np.float64)

    def cut_tensor(self, image_bytes: bytes) -> np.ndarray:
        """The decoded, preprocessed image batch [1, H, W, 3] exactly as the network receives it."""
        return self._to_cut(tf.constant([make_example(image_bytes)])).numpy()

    def network_graph_def(self, input_node: str):
        """A GraphDef of everything after the cut, with the cut replaced by a float32 placeholder."""
        cut_node, cut_index = tensor_parts(self.cut_name)
        if input_node in {node.name for node in self.graph_def.node}:
            fail(f"the graph already has a node named {input_node}")
        references = {f"{cut_node}:{cut_index}"} | ({cut_node} if cut_index == 0 else set())
        height, width = self.cut_spatial_size()
        rewritten = tf.compat.v1.GraphDef()
        rewritten.versions.CopyFrom(self.graph_def.versions)
        rewritten.library.CopyFrom(self.graph_def.library)
        for node in self.graph_def.node:
            copy = rewritten.node.add()
            copy.CopyFrom(node)
            for position, name in enumerate(copy.input):
                if name in references:
                    copy.input[position] = input_node
        placeholder = rewritten.node.add()
        placeholder.name = input_node
        placeholder.op = "Placeholder"
        placeholder.attr["dtype"].type = tf.float32.as_datatype_enum
        placeholder.attr["shape"].shape.CopyFrom(tf.TensorShape([None, height, width, 3]).as_proto())
        network = tf.compat.v1.graph_util.extract_sub_graph(rewritten, [tensor_parts(self.embedding_name)[0]])
        # Functions are referenced as an op name (direct calls) or through func attributes
        # (PartitionedCall's f, While's cond/body); keep the library if anything still uses it.
        referenced = set()
        for node in network.node:
            referenced.add(node.op)
            for value in node.attr.values():
                if value.HasField("func"):
                    referenced.add(value.func.name)
                referenced.update(function.name for function in value.list.func)
        if not any(function.signature.name in referenced for function in network.library.function):
            del network.library.function[:]  # decoding lived there; nothing after the cut calls it
        return network

    def cut_spatial_size(self) -> tuple[int, int]:
        shape = self.graph.get_tensor_by_name(self.cut_name).shape
        if shape.rank == 4 and shape[1] is not None and shape[2] is not None:
            return int(shape[1]), int(shape[2])
        probe = self.cut_tensor(uniform_png(448, 448, (128, 128, 128)))
        return int(probe.shape[1]), int(probe.shape[2])


def uniform_png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    return png_bytes(Image.new("RGB", (width, height), colour))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
