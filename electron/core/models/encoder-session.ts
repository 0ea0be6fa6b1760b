import fs from 'node:fs';
import type * as ort from 'onnxruntime-node';
import { onnxRuntime } from '../runtime/lazy-packages.js';
import { DermError } from '../../common/errors.js';
import { intraOpThreads, type ExecutionProvider } from './execution-providers.js';

/** Input or output of a loaded graph as onnxruntime reports it (symbolic dimensions are strings). */
export interface GraphValue {
  name: string;
  type: string | null;
  shape: Array<number | string>;
}

export interface ProviderAttempt {
  provider: ExecutionProvider;
  /** Why this provider could not be used; absent for the one that loaded. */
  error?: string;
}

export interface LoadedEncoderSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
  /** Set when an earlier provider failed and a later one (CPU) took over: what failed and why. */
  fallbackReason?: string;
  attempts: ProviderAttempt[];
  inputs: GraphValue[];
  outputs: GraphValue[];
}

/**
 * Session options, chosen deliberately:
 * - intra-op threads = cores: one session runs at a time, so it may use the whole machine;
 *   inter-op 1 with sequential execution, because encoder graphs are a single chain of ops.
 * - graph optimisation 'all': constant folding, Conv+BN/activation fusion and layout transforms;
 *   the few seconds this adds at load are paid once per worker.
 * - memory pattern on and the CPU arena on: inputs keep one shape per batch size, so ORT can plan
 *   and reuse buffers instead of allocating per run.
 */
export function sessionOptions(provider: ExecutionProvider): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    intraOpNumThreads: intraOpThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableMemPattern: true,
    enableCpuMemArena: true,
    logSeverityLevel: 3,
  };
}

let quietened = false;

/**
 * Loads an ONNX file with the first provider in `providers` that works. A provider that fails to load
 * (no CUDA libraries, no DirectML device, no binding on this platform) is skipped and the reason is
 * kept, so the caller can show "running on CPU because …". A file that is not a loadable model fails
 * on every provider; that is reported as a model problem naming the file, not as a provider problem.
 */
export async function loadEncoderSession(onnxPath: string, providers: readonly ExecutionProvider[]): Promise<LoadedEncoderSession> {
  if (!quietened) {
    // Provider load failures are caught and reported with their reason; ORT's own console logging of
    // them would only repeat that on stderr.
    onnxRuntime.env.logLevel = 'fatal';
    quietened = true;
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(onnxPath);
  } catch {
    throw new DermError('model-invalid', `The model file ${onnxPath} does not exist.`, { file: onnxPath });
  }
  if (stat.size === 0) throw new DermError('model-invalid', `The model file ${onnxPath} is empty (0 bytes).`, { file: onnxPath });
  const attempts: ProviderAttempt[] = [];
  const order = providers.includes('cpu') ? providers : [...providers, 'cpu' as const];
  for (const provider of order) {
    try {
      const session = await onnxRuntime.InferenceSession.create(onnxPath, sessionOptions(provider));
      attempts.push({ provider });
      const failed = attempts.filter((attempt) => attempt.error !== undefined);
      const loaded: LoadedEncoderSession = {
        session,
        provider,
        attempts,
        inputs: session.inputMetadata.map(describe),
        outputs: session.outputMetadata.map(describe),
      };
      if (failed.length > 0) loaded.fallbackReason = failed.map((attempt) => `${attempt.provider}: ${attempt.error}`).join('; ');
      return loaded;
    } catch (error) {
      const message = oneLine((error as Error).message);
      if (provider === 'cpu') {
        throw new DermError('model-invalid', `${onnxPath} is not a loadable ONNX model (${stat.size} bytes): ${message}`, {
          file: onnxPath,
          attempts: [...attempts, { provider, error: message }],
        });
      }
      attempts.push({ provider, error: message });
    }
  }
  throw new DermError('internal', `No execution provider was tried for ${onnxPath}.`);
}

function describe(metadata: ort.InferenceSession.ValueMetadata): GraphValue {
  if (!metadata.isTensor) return { name: metadata.name, type: null, shape: [] };
  return { name: metadata.name, type: metadata.type, shape: [...metadata.shape] };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 500);
}
