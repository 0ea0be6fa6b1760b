/** Typed messages between the Map screen and its UMAP worker. */
export interface UmapRequest {
  type: 'fit';
  /** n × dims, row-major (PCA components from the core). */
  coordinates: Float32Array;
  dims: number;
  seed: number;
}

export type UmapReply = { type: 'progress'; epoch: number; epochs: number } | { type: 'done'; positions: Float32Array } | { type: 'failed'; message: string };
