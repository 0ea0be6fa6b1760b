import { DermError } from '../../common/errors.js';
import type { GraphValue } from './encoder-session.js';
import type { ModelManifest } from './model-manifest.js';

export interface GraphContract {
  /** A graph whose batch dimension is a fixed number (often 1) can only run batches of that size. */
  fixedBatchSize?: number;
}

/**
 * Compares what the manifest declares with what the ONNX graph says about itself: input and output
 * names, element type, rank, and every dimension the graph fixes. Symbolic dimensions (strings) are
 * accepted for any size. All disagreements are listed in one message naming both files.
 */
export function checkGraphAgainstManifest(
  inputs: readonly GraphValue[],
  outputs: readonly GraphValue[],
  manifest: ModelManifest,
  files: { manifestPath: string; onnxPath: string },
): GraphContract {
  const problems: string[] = [];
  const input = inputs.find((value) => value.name === manifest.input.name);
  const expectedInput: Array<number | null> =
    manifest.input.layout === 'NCHW' ? [null, 3, manifest.input.height, manifest.input.width] : [null, manifest.input.height, manifest.input.width, 3];
  let fixedBatchSize: number | undefined;
  if (!input) {
    problems.push(`input.name "${manifest.input.name}" is not an input of the graph (its inputs: ${list(inputs)})`);
  } else {
    if (input.type !== 'float32') problems.push(`input "${input.name}" has type ${input.type ?? 'non-tensor'}; a float32 tensor is required`);
    if (input.shape.length !== 4) {
      problems.push(`input "${input.name}" has shape ${shapeText(input.shape)}; ${manifest.input.layout} needs 4 dimensions ${shapeText(expectedInput)}`);
    } else {
      const wrongAxes: string[] = [];
      input.shape.forEach((size, axis) => {
        const expected = expectedInput[axis];
        if (typeof size !== 'number' || size < 0) return;
        if (axis === 0) fixedBatchSize = size;
        else if (size !== expected) wrongAxes.push(`axis ${axis} is ${size}, expected ${expected}`);
      });
      if (wrongAxes.length > 0) {
        problems.push(
          `input "${input.name}" has shape ${shapeText(input.shape)} but the manifest's ${manifest.input.layout} ${manifest.input.width}x${manifest.input.height} needs ${shapeText(expectedInput)} (${wrongAxes.join(', ')})`,
        );
      }
    }
  }
  const others = inputs.filter((value) => value.name !== manifest.input.name);
  if (input && others.length > 0) problems.push(`the graph has inputs the manifest does not feed: ${list(others)}`);
  const output = outputs.find((value) => value.name === manifest.output.name);
  if (!output) {
    problems.push(`output.name "${manifest.output.name}" is not an output of the graph (its outputs: ${list(outputs)})`);
  } else {
    if (output.type !== 'float32') problems.push(`output "${output.name}" has type ${output.type ?? 'non-tensor'}; a float32 tensor is required`);
    const perImage = output.shape.slice(1);
    if (output.shape.length < 2) {
      problems.push(`output "${output.name}" has shape ${shapeText(output.shape)}; expected (batch, ${manifest.output.dim})`);
    } else if (perImage.every((size) => typeof size === 'number' && size >= 0)) {
      const values = (perImage as number[]).reduce((product, size) => product * size, 1);
      if (values !== manifest.output.dim) {
        problems.push(`output "${output.name}" has shape ${shapeText(output.shape)} = ${values} values per image, but output.dim is ${manifest.output.dim}`);
      }
    }
  }
  if (problems.length > 0) {
    throw new DermError('model-invalid', `The manifest ${files.manifestPath} disagrees with the graph ${files.onnxPath}: ${problems.join('; ')}.`, {
      file: files.onnxPath,
      manifest: files.manifestPath,
      problems,
    });
  }
  return fixedBatchSize === undefined ? {} : { fixedBatchSize };
}

function list(values: readonly GraphValue[]): string {
  return values.length === 0 ? 'none' : values.map((value) => `"${value.name}" ${shapeText(value.shape)}`).join(', ');
}

function shapeText(shape: ReadonlyArray<number | string | null>): string {
  return `[${shape.map((size) => (size === null ? 'N' : String(size))).join(', ')}]`;
}
