/** A bench size read from the environment (e.g. BIT_BENCH_RUNS=3); unset or empty gives the default. */
export function integerFromEnvironment(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}=${text} is not a positive integer.`);
  return value;
}
