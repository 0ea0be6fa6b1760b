import { parseInput } from '../common/contract-core.js';
import { contract, isCallName, type Envelope } from '../common/contract.js';
import { DermError, serializeError } from '../common/errors.js';
import { isRendererUrl } from './shell-policy.js';

/** The parts of Electron's IpcMainInvokeEvent this bridge reads (kept structural so it is testable in Node). */
export interface InvokeEventLike {
  senderFrame: { url: string; parent: unknown } | null;
}

export interface ContractInvoker {
  invoke(call: string, input: unknown): Promise<unknown>;
}

export const invokeChannel = 'derm:invoke';
export const eventChannel = 'derm:event';

/**
 * The single IPC handler behind every contract call: checks that the sender is the renderer's own
 * top-level document, that the call exists and that the payload matches the contract, then forwards
 * it to the core worker. Answers are envelopes ({ output } or { error }) because Electron reduces a
 * thrown error to a generic message.
 */
export function createInvokeHandler(api: ContractInvoker): (event: InvokeEventLike, call: unknown, input: unknown) => Promise<Envelope> {
  return async (event, call, input) => {
    try {
      const frame = event.senderFrame;
      if (!frame || frame.parent !== null || !isRendererUrl(frame.url)) {
        throw new DermError(
          'unauthorized',
          `Refused a call from ${frame ? frame.url || 'an unnamed frame' : 'a destroyed frame'}: only the workstation window may call the library.`,
        );
      }
      if (typeof call !== 'string' || !isCallName(call)) {
        throw new DermError('not-found', `There is no call named "${String(call)}".`, { call: String(call) });
      }
      const parsed = parseInput(call, contract[call].input, input);
      return { output: await api.invoke(call, parsed) };
    } catch (error) {
      return { error: serializeError(error) };
    }
  };
}
