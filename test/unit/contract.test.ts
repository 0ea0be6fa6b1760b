import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseInput } from '../../electron/common/contract-core.js';
import { appEventSchema, callNames, contract, createClient, type CallName } from '../../electron/common/contract.js';
import { DermError } from '../../electron/common/errors.js';

function rejection(call: string, input: unknown): DermError {
  try {
    parseInput(call, contract[call as keyof typeof contract].input, input);
  } catch (error) {
    expect(error).toBeInstanceOf(DermError);
    return error as DermError;
  }
  throw new Error(`${call} accepted ${JSON.stringify(input)}`);
}

/** Input fields that are required at the top level of a call's (object) input schema. */
function requiredFields(schema: z.ZodType): string[] {
  if (!(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>)
    .filter(([, field]) => !field.safeParse(undefined).success)
    .map(([name]) => name);
}

const featureFolder = path.resolve(import.meta.dirname, '../../electron/common/contract');
const handlersFolder = path.resolve(import.meta.dirname, '../../electron/core/app-api/handlers');

describe('app contract', () => {
  it("assembles every feature module's calls, each declared once, and pairs each feature with its handlers", async () => {
    const declaredIn = new Map<string, string>();
    const features: string[] = [];
    for (const file of fs.readdirSync(featureFolder).filter((name) => name.endsWith('.ts'))) {
      const module = (await import(path.join(featureFolder, file))) as Record<string, unknown>;
      for (const [exportName, table] of Object.entries(module)) {
        if (!exportName.endsWith('Calls')) continue;
        features.push(file.replace(/\.ts$/, ''));
        for (const [name, spec] of Object.entries(table as Record<string, unknown>)) {
          expect(declaredIn.get(name), `${name} is declared in ${declaredIn.get(name)} and ${file}`).toBeUndefined();
          declaredIn.set(name, file);
          // The assembled table holds the feature's own declaration, not another one of the same name.
          expect(contract[name as CallName], name).toBe(spec);
        }
      }
    }
    expect([...declaredIn.keys()].sort()).toEqual([...callNames].sort());
    expect(features.length).toBeGreaterThan(5);
    for (const feature of features) expect(fs.existsSync(path.join(handlersFolder, `${feature}.handlers.ts`)), feature).toBe(true);
  });

  it('describes every call with a sentence and zod schemas', () => {
    expect(callNames.length).toBeGreaterThan(5);
    for (const name of callNames) {
      expect(contract[name].description.length, name).toBeGreaterThan(10);
      expect(contract[name].input, name).toBeInstanceOf(z.ZodType);
      expect(contract[name].output, name).toBeInstanceOf(z.ZodType);
    }
  });

  it('refuses an unknown field in every call, naming it', () => {
    for (const name of callNames) {
      const error = rejection(name, { notAField: 1 });
      expect(error.code, name).toBe('invalid-input');
      expect(error.message, name).toContain(name);
      expect(error.message, name).toMatch(/notAField|Invalid input/);
    }
  });

  it('names each missing required field', () => {
    for (const name of callNames) {
      for (const field of requiredFields(contract[name].input)) {
        const error = rejection(name, {});
        expect(error.message, `${name}.${field}`).toContain(`"${field}"`);
        expect(error.details?.fields, `${name}.${field}`).toContain(field);
      }
    }
  });

  it('names a nested field with the wrong type', () => {
    const error = rejection('imagesPage', { offset: 0, limit: 10, filter: { batchId: 'three' } });
    expect(error.message).toContain('"filter.batchId"');
    expect(rejection('imagesPage', { offset: -1, limit: 10 }).message).toContain('"offset"');
    expect(rejection('jobGet', { jobId: '../etc' }).message).toContain('job id');
  });

  it('validates input in the client before anything is sent', async () => {
    const sent: string[] = [];
    const client = createClient({
      invoke: async (call) => {
        sent.push(call);
        return { jobs: [] };
      },
      subscribe: () => () => undefined,
    });
    await expect(client.imagesPage({ offset: 0, limit: 0 })).rejects.toThrow(/"limit"/);
    expect(sent).toEqual([]);
    await expect(client.jobsList({})).resolves.toEqual({ jobs: [] });
    expect(sent).toEqual(['jobsList']);
  });

  it('delivers only well-formed events to the typed listeners', () => {
    let deliver: (event: unknown) => void = () => undefined;
    const client = createClient({ invoke: async () => null, subscribe: (listener) => ((deliver = listener), () => undefined) });
    const seen: string[] = [];
    client.onLibraryChanged((what) => seen.push(what));
    deliver({ type: 'library-changed', what: 'settings' });
    deliver({ type: 'library-changed' });
    deliver({ type: 'something-else' });
    expect(seen).toEqual(['settings']);
    expect(
      appEventSchema.safeParse({
        type: 'job-progress',
        jobId: 'job-1',
        kind: 'import',
        progress: { job: 'import', done: 1, total: 2, ratePerSecond: 1, etaSeconds: null },
      }).success,
    ).toBe(true);
  });
});
