#!/usr/bin/env python3
"""Export Google's Derm Foundation (a TF SavedModel you downloaded after accepting its terms) to ONNX
for derm-workstation, and write its manifest.

    python export_onnx.py --model-dir ./derm-foundation-savedmodel --output-dir ./out

What it does:
  1. loads the SavedModel and freezes its serving_default signature;
  2. finds the tensor where image decoding/resizing/normalisation ends and the network begins (the
     input of the first convolution, above BiT's root padding); --cut-tensor overrides it and
     --list-tensors shows the candidates;
  3. measures, with uniform probe images, how pixel values 0..255 map to values at that tensor
     (per channel v = a·p + b), so the manifest's mean/std are measured rather than guessed;
  4. converts everything after the cut with tf2onnx (input "image" [N, H, W, 3] float32 NHWC,
     output "embedding" [N, 6144]);
  5. checks with onnxruntime that the ONNX model reproduces the SavedModel's embedding when fed the
     same preprocessed tensor (cosine >= 0.9999 on test images), and only then
  6. writes <id>.onnx and <id>.manifest.json (with the file's sha256) into --output-dir.

Needs: Python 3.10/3.11, tensorflow 2.15, tf2onnx 1.16, onnxruntime, numpy < 2, pillow; about 8 GB of
RAM (the 1.5 GB of weights are held several times while freezing and converting). It cannot run in
derm-workstation's own test environment because the model is gated; see README.md here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from df_graph import DermFoundationGraph, cosine, fail, png_bytes, uniform_png

HERE = Path(__file__).resolve().parent
# Uniform colours: black, white, the three primaries, greys and two mixed colours. Each channel's
# mapping is fitted over all of them; the primaries reveal any channel reordering (BGR).
PROBES = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128), (64, 160, 224), (200, 40, 120)]
PARITY_THRESHOLD = 0.9999


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="Derm Foundation SavedModel folder (holds saved_model.pb and variables/)")
    parser.add_argument("--output-dir", default=".", help="where <id>.onnx and <id>.manifest.json are written (default: .)")
    parser.add_argument("--template", default=str(HERE / "manifest.template.json"), help="manifest template (default: the one next to this script)")
    parser.add_argument("--cut-tensor", help="tensor name to cut at, e.g. 'model/tf.math.subtract/Sub:0' (default: found automatically)")
    parser.add_argument("--list-tensors", action="store_true", help="print candidate cut tensors (float32, 4-D, 3 channels) and exit")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (tf2onnx tests 14-18; default 17)")
    return parser.parse_args()


def measure_value_mapping(graph: DermFoundationGraph, height: int, width: int) -> list[tuple[float, float, float]]:
    """Per network channel: (a, b, worst residual) of v = a·p + b, p the 0..255 pixel value."""
    inputs = np.array(PROBES, dtype=np.float64)
    outputs = []
    for colour in PROBES:
        cut = graph.cut_tensor(uniform_png(width, height, colour))
        h, w = cut.shape[1], cut.shape[2]
        # The centre only: any in-graph padding or resampling edge effect stays at the borders.
        centre = cut[0, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4, :].reshape(-1, 3)
        outputs.append(np.median(centre, axis=0))
    outputs = np.array(outputs, dtype=np.float64)
    design = np.stack([inputs, np.ones_like(inputs)], axis=-1)  # [probe, channel, 2]
    mapping = []
    for channel in range(3):
        fits = []
        for source in range(3):
            (a, b), *_ = np.linalg.lstsq(design[:, source, :], outputs[:, channel], rcond=None)
            residual = float(np.max(np.abs(design[:, source, :] @ np.array([a, b]) - outputs[:, channel])))
            fits.append((residual, source, float(a), float(b)))
        residual, source, a, b = min(fits)
        if source != channel:
            fail(f"network channel {channel} follows input channel {source}: the graph reorders colour channels, "
                 "which a manifest cannot express; choose a cut after the reordering with --cut-tensor")
        if a <= 0:
            fail(f"channel {channel}: values fall as pixels brighten (a = {a}); the cut is not an image tensor")
        if residual > 0.01 * 255 * a:
            print(f"warning: channel {channel} is not an affine function of the pixel value (worst residual {residual:.4g} "
                  f"over a range of {255 * a:.4g}); the cut may include a non-linear step", file=sys.stderr)
        mapping.append((a, b, residual))
    return mapping


def test_images() -> list[bytes]:
    """Two photo-like images (smooth colour fields plus noise), not square, so resizing is exercised."""
    from PIL import Image

    rng = np.random.default_rng(7)
    images = []
    for width, height in [(640, 480), (500, 700)]:
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([180 + 40 * np.sin(x / 97), 130 + 40 * np.cos(y / 71), 110 + 30 * np.sin((x + y) / 53)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        images.append(png_bytes(Image.fromarray(pixels, "RGB")))
    return images


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def main() -> None:
    args = parse_args()
    import onnxruntime as ort
    import tf2onnx

    template = json.loads(Path(args.template).read_text())
    model_id = template["id"]
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = output_dir / f"{model_id}.onnx"
    manifest_path = output_dir / f"{model_id}.manifest.json"

    graph = DermFoundationGraph(args.model_dir, args.cut_tensor)
    if args.list_tensors:
        graph.list_tensors()
        return
    height, width = graph.cut_spatial_size()
    print(f"network input at the cut: {height}x{width}x3", file=sys.stderr)

    mapping = measure_value_mapping(graph, height, width)
    std = [1.0 / (255.0 * a) for a, _, _ in mapping]
    mean = [-b * s for (_, b, _), s in zip(mapping, std)]
    for channel, ((a, b, residual), m, s) in enumerate(zip(mapping, mean, std)):
        print(f"channel {channel}: v = {a:.6g}·p + {b:.6g} (worst residual {residual:.3g}) -> mean {m:.6g}, std {s:.6g} on [0, 1]", file=sys.stderr)

    print(f"converting the network after {graph.cut_name} with tf2onnx (opset {args.opset}) …", file=sys.stderr)
    input_node = "derm_image"
    network = graph.network_graph_def(input_node)
    partial = output_dir / f"{model_id}.onnx.partial"
    tf2onnx.convert.from_graph_def(
        network,
        name=model_id,
        input_names=[f"{input_node}:0"],
        output_names=[graph.embedding_name],
        opset=args.opset,
        tensors_to_rename={f"{input_node}:0": "image", graph.embedding_name: "embedding"},
        output_path=str(partial),
    )

    session = ort.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
    input_meta, output_meta = session.get_inputs()[0], session.get_outputs()[0]
    worst = 1.0
    dim = None
    for index, image in enumerate(test_images()):
        cut = graph.cut_tensor(image).astype(np.float32)
        ours = session.run([output_meta.name], {input_meta.name: cut})[0]
        reference = graph.reference_embedding(image)
        dim = int(np.asarray(ours).reshape(-1).shape[0])
        value = cosine(ours, reference)
        worst = min(worst, value)
        print(f"test image {index}: cosine(ONNX on TF's preprocessed tensor, SavedModel) = {value:.8f}", file=sys.stderr)
    if worst < PARITY_THRESHOLD:
        partial.unlink(missing_ok=True)
        fail(f"the ONNX export disagrees with the SavedModel (worst cosine {worst:.6f} < {PARITY_THRESHOLD}); nothing written")
    if dim != template["output"]["dim"]:
        print(f"warning: the embedding has {dim} values; the template says {template['output']['dim']}", file=sys.stderr)
    os.replace(partial, onnx_path)

    sha256 = hashlib.sha256()
    with open(onnx_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(block)

    manifest = dict(template)
    manifest["file"] = onnx_path.name
    manifest["sha256"] = sha256.hexdigest()
    manifest["input"] = {
        **template["input"],
        "name": input_meta.name,
        "width": width,
        "height": height,
        "valueRange": [0, 1],
        "mean": [round(m, 7) for m in mean],
        "std": [round(s, 7) for s in std],
    }
    manifest["output"] = {"name": output_meta.name, "dim": dim}
    manifest["assumptions"] = [
        text for text in template.get("assumptions", []) if "value range" not in text.lower()
    ]
    manifest["description"] = (
        f"{template.get('description', '')} Exported with export_onnx.py: graph cut at {graph.cut_name}; "
        f"mean/std measured from {len(PROBES)} uniform probe images (worst affine residual "
        f"{max(r for _, _, r in mapping):.3g}); ONNX vs SavedModel on the same preprocessed tensor: worst cosine {worst:.8f}."
    ).strip()
    write_atomically(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    print(f"wrote {onnx_path} (sha256 {manifest['sha256']})\nwrote {manifest_path}")
    print(f"next: dermws models add {onnx_path} --manifest {manifest_path}")


if __name__ == "__main__":
    main()
