import { UMAP } from 'umap-js';
import type { UmapReply, UmapRequest } from './umap-messages.js';
import { seededRandom } from '../../../../electron/common/seeded-random.js';

// UMAP of a few thousand points takes seconds; running it here keeps the window responsive.
const post = (reply: UmapReply, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(reply, transfer);

self.onmessage = (event: MessageEvent<UmapRequest>) => {
  const { coordinates, dims, seed } = event.data;
  try {
    const count = coordinates.length / dims;
    const rows: number[][] = [];
    for (let index = 0; index < count; index++) rows.push(Array.from(coordinates.subarray(index * dims, (index + 1) * dims)));
    const umap = new UMAP({ nComponents: 2, nNeighbors: Math.max(2, Math.min(15, count - 1)), minDist: 0.1, random: seededRandom(seed) });
    const epochs = umap.initializeFit(rows);
    for (let epoch = 0; epoch < epochs; epoch++) {
      umap.step();
      if (epoch % 20 === 0) post({ type: 'progress', epoch, epochs });
    }
    const embedding = umap.getEmbedding();
    const positions = new Float32Array(count * 2);
    embedding.forEach((point, index) => {
      positions[index * 2] = point[0]!;
      positions[index * 2 + 1] = point[1]!;
    });
    post({ type: 'done', positions }, [positions.buffer]);
  } catch (error) {
    post({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  }
};
