/** The kernel text, the generated module's path and its generator (see generate-vector-kernels.mjs). */
export const kernelsText: string;
export const kernelsModule: string;
export function generateVectorKernels(): Promise<string>;
