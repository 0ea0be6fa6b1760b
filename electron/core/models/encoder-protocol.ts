import type { SerializedError } from '../../common/errors.js';
import type { GraphValue, ProviderAttempt } from './encoder-session.js';
import type { ExecutionProvider } from './execution-providers.js';

/** Messages between an EncoderRuntime (calling thread) and encoder.worker (the ONNX session's thread). */
export type EncoderRequest =
  | { type: 'load'; onnxPath: string; providers: ExecutionProvider[] }
  | { type: 'run'; id: number; inputName: string; outputName: string; data: Float32Array; dims: number[] }
  | { type: 'close' };

export type EncoderReply =
  | { type: 'loaded'; provider: ExecutionProvider; fallbackReason?: string; attempts: ProviderAttempt[]; inputs: GraphValue[]; outputs: GraphValue[] }
  | { type: 'result'; id: number; data: Float32Array; dims: number[] }
  | { type: 'error'; id?: number; error: SerializedError }
  | { type: 'closed' };
