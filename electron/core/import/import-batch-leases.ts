import path from 'node:path';
import { tryAcquireLease, type Lease } from '../library/lease.js';

/**
 * Which live process owns which import batch: one lock file per batch in the library's locks/ folder.
 * A batch is resumed only by a process that takes its lease, so two imports of the same paths never
 * share one batch, and a batch whose process died is free the moment that process is gone.
 */
export class ImportBatchLeases {
  constructor(private readonly locksFolder: string) {}

  tryAcquire(batchId: number): Lease | undefined {
    return tryAcquireLease(path.join(this.locksFolder, `import-batch-${batchId}.lock`));
  }
}
