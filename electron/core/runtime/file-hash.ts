import crypto from 'node:crypto';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';

/** The sha256 (hex) of a file's bytes, read in 4 MiB chunks on this thread. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// Plain CommonJS evaluated in the worker, so it needs no module file, no TypeScript loader and no
// path inside an app.asar: it reads the file and answers with the hex digest or the error's message.
const hashWorkerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const fs = require('node:fs');
try {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(workerData.file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(4 << 20);
    for (;;) {
      const read = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    fs.closeSync(fd);
  }
  parentPort.postMessage({ sha256: hash.digest('hex') });
} catch (error) {
  parentPort.postMessage({ error: String(error && error.message ? error.message : error) });
}
`;

/**
 * The same digest computed on a short-lived worker thread, so that a large file (an index graph of
 * 160 MB at 100k images) is hashed while this thread does other work, such as loading that file.
 */
export function sha256OfFileOnWorker(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(hashWorkerSource, { eval: true, workerData: { file } });
    let settled = false;
    worker.once('message', (answer: { sha256?: string; error?: string }) => {
      settled = true;
      if (answer.sha256) resolve(answer.sha256);
      else reject(new Error(answer.error ?? 'the file could not be hashed'));
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the hashing thread stopped (exit code ${code})`));
    });
  });
}
