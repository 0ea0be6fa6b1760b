import os from 'node:os';

/** Execution providers the workstation knows how to ask onnxruntime-node for. */
export type ExecutionProvider = 'cuda' | 'dml' | 'coreml' | 'cpu';

/**
 * The order providers are tried in on each platform. Only one accelerator is worth trying per
 * platform (the one onnxruntime-node ships a binding for there); CPU always comes last and always loads.
 */
export function providerOrder(platform: NodeJS.Platform = process.platform, arch: string = process.arch): ExecutionProvider[] {
  if (platform === 'win32') return ['dml', 'cpu'];
  if (platform === 'linux') return ['cuda', 'cpu'];
  if (platform === 'darwin' && arch === 'arm64') return ['coreml', 'cpu'];
  return ['cpu'];
}

/**
 * `DERMWS_EXECUTION_PROVIDERS=cpu` (comma-separated) overrides the order, e.g. to benchmark CPU on a
 * GPU machine; unknown names are an error so a typo is never silently ignored.
 */
export function providersFromEnvironment(value: string | undefined): ExecutionProvider[] | undefined {
  if (!value) return undefined;
  const known: ExecutionProvider[] = ['cuda', 'dml', 'coreml', 'cpu'];
  const names = value
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  for (const name of names) {
    if (!known.includes(name as ExecutionProvider)) {
      throw new Error(`DERMWS_EXECUTION_PROVIDERS: unknown execution provider "${name}"; expected some of ${known.join(', ')}.`);
    }
  }
  return names as ExecutionProvider[];
}

/**
 * Images per `session.run`. On a GPU, larger batches amortise the launch and transfer cost; on the
 * CPU, ORT already spreads one image over all cores, so a small batch keeps memory low and progress
 * smooth while still letting decode of the next batch overlap.
 */
export function defaultBatchSize(provider: ExecutionProvider): number {
  if (provider === 'cuda') return 32;
  if (provider === 'dml') return 16;
  if (provider === 'coreml') return 8;
  return 8;
}

/** Intra-op threads: every core, because inference is the bottleneck and one session runs at a time. */
export function intraOpThreads(): number {
  return Math.max(1, os.availableParallelism());
}
