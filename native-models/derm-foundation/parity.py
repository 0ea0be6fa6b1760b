#!/usr/bin/env python3
"""Compare Derm Foundation's own embeddings (TF SavedModel, serving signature on PNG bytes) with the
exported ONNX model over a folder of images, and print per-image and worst cosines.

    python parity.py --model-dir ./derm-foundation-savedmodel \\
        --onnx ./out/derm-foundation.onnx --manifest ./out/derm-foundation.manifest.json \\
        --images ./my-photos [--limit 50]

Two cosines per image, both against the SavedModel's embedding of the image sent as PNG bytes (as
the model card does):
  conversion  ONNX fed the exact tensor the SavedModel computes at the cut: measures the export
              alone; should be >= 0.9999.
  pipeline    ONNX fed our preprocessing from the manifest (resize, fit, value range, mean/std),
              done here with Pillow: measures the export plus the preprocessing assumptions.
              derm-workstation resizes with sharp (libvips), whose bilinear differs slightly from
              Pillow's, so its figures can differ from these by a small amount.
Exit status 1 when the worst conversion cosine is below 0.9999.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from df_graph import DermFoundationGraph, cosine, fail, png_bytes

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
CONVERSION_THRESHOLD = 0.9999


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="Derm Foundation SavedModel folder")
    parser.add_argument("--onnx", required=True, help="the exported ONNX file")
    parser.add_argument("--manifest", required=True, help="its manifest (from export_onnx.py)")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--limit", type=int, default=0, help="compare at most this many images (0: all)")
    parser.add_argument("--cut-tensor", help="the cut used at export, if it was given explicitly")
    return parser.parse_args()


def preprocess(image, manifest: dict) -> np.ndarray:
    """The manifest's preprocessing with Pillow: [1, H, W, 3] (NHWC) or [1, 3, H, W] float32."""
    from PIL import Image

    spec = manifest["input"]
    width, height = spec["width"], spec["height"]
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST, "lanczos3": Image.LANCZOS}[spec["resize"]]
    image = image.convert("RGB")
    if spec["fit"] == "stretch":
        image = image.resize((width, height), resample)
    elif spec["fit"] == "centre-crop":
        scale = max(width / image.width, height / image.height)
        scaled = image.resize((max(width, round(image.width * scale)), max(height, round(image.height * scale))), resample)
        left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
        image = scaled.crop((left, top, left + width, top + height))
    elif spec["fit"] == "pad":
        scale = min(width / image.width, height / image.height)
        scaled = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)
        canvas = Image.new("RGB", (width, height), tuple(spec.get("padColour", [0, 0, 0])))
        canvas.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
        image = canvas
    else:
        fail(f"manifest input.fit {spec['fit']!r} is not stretch, centre-crop or pad")
    low, high = spec["valueRange"]
    values = np.asarray(image, dtype=np.float32) / 255.0 * (high - low) + low
    values = (values - np.array(spec["mean"], dtype=np.float32)) / np.array(spec["std"], dtype=np.float32)
    if spec["layout"] == "NCHW":
        values = values.transpose(2, 0, 1)
    return values[np.newaxis].astype(np.float32)


def main() -> None:
    args = parse_args()
    import onnxruntime as ort
    from PIL import Image

    manifest = json.loads(Path(args.manifest).read_text())
    images = sorted(path for path in Path(args.images).rglob("*") if path.suffix.lower() in EXTENSIONS)
    if args.limit > 0:
        images = images[: args.limit]
    if not images:
        fail(f"no images ({', '.join(sorted(EXTENSIONS))}) under {args.images}")

    graph = DermFoundationGraph(args.model_dir, args.cut_tensor)
    session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    input_name, output_name = manifest["input"]["name"], manifest["output"]["name"]
    if input_name not in [i.name for i in session.get_inputs()] or output_name not in [o.name for o in session.get_outputs()]:
        fail(f"manifest names input {input_name!r} / output {output_name!r}; the ONNX graph has "
             f"{[i.name for i in session.get_inputs()]} / {[o.name for o in session.get_outputs()]}")

    print(f"{'image':60s} {'conversion':>12s} {'pipeline':>12s}")
    conversion, pipeline = [], []
    for path in images:
        try:
            image = Image.open(path)
            image.load()
        except OSError as error:
            print(f"{str(path):60s} skipped: {error}", file=sys.stderr)
            continue
        encoded = png_bytes(image)
        reference = graph.reference_embedding(encoded)
        exact = session.run([output_name], {input_name: graph.cut_tensor(encoded).astype(np.float32)})[0]
        ours = session.run([output_name], {input_name: preprocess(image, manifest)})[0]
        conversion.append(cosine(exact, reference))
        pipeline.append(cosine(ours, reference))
        name = str(path.relative_to(args.images))
        print(f"{name[-60:]:60s} {conversion[-1]:12.8f} {pipeline[-1]:12.8f}")

    if not conversion:
        fail("no image could be read")
    print(f"\n{len(conversion)} images")
    print(f"conversion: worst {min(conversion):.8f}, mean {np.mean(conversion):.8f}")
    print(f"pipeline:   worst {min(pipeline):.8f}, mean {np.mean(pipeline):.8f}, 5th percentile {np.percentile(pipeline, 5):.8f}")
    if min(conversion) < CONVERSION_THRESHOLD:
        print(f"FAIL: the export differs from the SavedModel (worst conversion cosine < {CONVERSION_THRESHOLD})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
