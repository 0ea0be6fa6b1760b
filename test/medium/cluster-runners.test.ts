import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDermws } from '../fixtures/cli-runner.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/**
 * The shipped cluster runners, run for real: the Dask script on a LocalCluster with two worker
 * processes (Debian's python3-distributed, which .ci/run installs), and the SLURM array script's
 * body with the variables SLURM sets for an array task (a real slurmctld/slurmd pair is not started
 * in CI: it needs munge, root daemons and a cgroup-capable container).
 */
const repoRoot = path.resolve(import.meta.dirname, '../..');
const runners = path.join(repoRoot, 'electron', 'cli', 'cluster-runners');
const dermwsCommand = `${process.execPath} ${path.join(repoRoot, 'bin', 'dermws.js')}`;
const scratch: string[] = [];

/**
 * A Python that can import dask.distributed: `python3` on PATH, else Debian's /usr/bin/python3 (where
 * apt installs python3-distributed; a pyenv or venv python3 earlier on PATH does not see it).
 */
function pythonWithDistributed(): string | undefined {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(candidate, ['-c', 'import distributed'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}
const python = pythonWithDistributed();

beforeAll(() => {
  process.env.DERMWS_MODEL_CACHE ??= path.join(repoRoot, 'native-models', 'generated');
  process.env.DERMWS_EXECUTION_PROVIDERS = 'cpu';
});
afterAll(() => {
  for (const folder of scratch) fs.rmSync(folder, { recursive: true, force: true });
});

async function plannedLibrary(images: number, shardSize: number): Promise<{ root: string; library: string; planFolder: string }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-cluster-runner-'));
  scratch.push(root);
  const photos = path.join(root, 'photos');
  for (let index = 0; index < images; index++) await writeSkinImage(path.join(photos, `p${index}.jpg`), { seed: 70 + index, width: 200, height: 160 });
  const library = path.join(root, 'library');
  expect((await runDermws('--library', library, 'import', photos, '--json')).code).toBe(0);
  const planFolder = path.join(root, 'plan');
  const planned = await runDermws('--library', library, 'embed', 'plan', '--shard-size', String(shardSize), '--out', planFolder, '--json');
  expect(planned.code).toBe(0);
  return { root, library, planFolder };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('Dask runner (dask_embed.py)', () => {
  if (!python) {
    it.skip('SKIPPED: neither python3 nor /usr/bin/python3 can `import distributed`; install Debian python3-distributed (.ci/run does)', () => {});
    return;
  }

  it('runs every shard on a LocalCluster of two worker processes, retries a shard whose task failed, and leaves shards the merge accepts', async () => {
    const { root, library, planFolder } = await plannedLibrary(5, 2);
    const out = path.join(root, 'out');
    // The first run of shard 1 fails like a node losing its GPU; Dask must run it again.
    const marks = path.join(root, 'marks');
    fs.mkdirSync(marks);
    const flaky = path.join(root, 'flaky-dermws.sh');
    fs.writeFileSync(
      flaky,
      `#!/usr/bin/env bash\nif [[ " $* " == *" --shard 1 "* && ! -e "${marks}/shard-1" ]]; then touch "${marks}/shard-1"; echo "simulated node failure" >&2; exit 3; fi\nexec ${dermwsCommand} "$@"\n`,
      { mode: 0o755 },
    );
    const result = await run(python, [path.join(runners, 'dask_embed.py'), planFolder, '--out', out, '--workers', '2', '--retries', '2', '--dermws', flaky], {
      ...process.env,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/dask_embed: 3 shard\(s\) of .* on tcp:\/\//);
    for (const shard of [0, 1, 2]) expect(result.stdout).toMatch(new RegExp(`\\[\\d/3\\] shard ${shard}: success, \\d of \\d embedded, 0 failed, on cpu`));
    expect(result.stdout).toContain(`Merge with: dermws embeddings import ${out}`);
    expect(fs.existsSync(path.join(marks, 'shard-1'))).toBe(true);
    expect(fs.readdirSync(out).sort()).toEqual(['plan.json', 'shard-0.json', 'shard-0.npz', 'shard-1.json', 'shard-1.npz', 'shard-2.json', 'shard-2.npz']);

    const merged = await runDermws('--library', library, 'embeddings', 'import', out, '--json');
    expect(merged.code).toBe(0);
    expect(merged.json).toMatchObject({ status: 'success', stored: 5, missing: [], refused: [] });

    // Rerun: every shard is already finished, so each task skips it.
    const again = await run(python, [path.join(runners, 'dask_embed.py'), planFolder, '--out', out, '--workers', '2', '--dermws', dermwsCommand], {
      ...process.env,
    });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.match(/: skipped,/g)).toHaveLength(3);
  });

  it('refuses a folder that is not a plan and a shard number out of range, naming them', async () => {
    const { root, planFolder } = await plannedLibrary(2, 2);
    const notPlan = await run(python, [path.join(runners, 'dask_embed.py'), root, '--out', path.join(root, 'out')], { ...process.env });
    expect(notPlan.code).not.toBe(0);
    expect(notPlan.stderr).toContain(`${root} is not an embedding plan: it has no plan.json`);
    const outside = await run(python, [path.join(runners, 'dask_embed.py'), planFolder, '--out', path.join(root, 'out'), '--shards', '0,4'], {
      ...process.env,
    });
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toContain('shard(s) [4] are out of range: the plan has 1 shard(s), numbered 0 to 0');
  });
});

describe('SLURM array script (slurm-embed.sbatch), body run with the array variables set', () => {
  it('embeds shard SLURM_ARRAY_TASK_ID + DERMWS_SHARD_OFFSET per task from the image root mounted at DERMWS_ROOT; the merge takes them', async () => {
    const { root, library, planFolder } = await plannedLibrary(3, 1);
    const out = path.join(root, 'out');
    // The nodes see the photos mounted elsewhere (DERMWS_ROOT → --root); the desktop's copy is gone.
    const mounted = path.join(root, 'mnt', 'photos');
    fs.mkdirSync(path.dirname(mounted), { recursive: true });
    fs.renameSync(path.join(root, 'photos'), mounted);
    const script = path.join(runners, 'slurm-embed.sbatch');
    const text = fs.readFileSync(script, 'utf8');
    expect(text).toMatch(/^#SBATCH --gres=gpu:1$/m);
    // Tasks 0 and 1 of an array submitted with offset 1 are shards 1 and 2; task 0 without offset is shard 0.
    for (const [task, offset] of [
      [0, '1'],
      [1, '1'],
      [0, '0'],
    ] as const) {
      const env = {
        ...process.env,
        SLURM_ARRAY_JOB_ID: '4242',
        SLURM_ARRAY_TASK_ID: String(task),
        SLURM_JOB_ID: `${4242 + task}`,
        DERMWS_PLAN: planFolder,
        DERMWS_OUT: out,
        DERMWS_ROOT: mounted,
        DERMWS: dermwsCommand,
        DERMWS_SHARD_OFFSET: offset,
      };
      const result = await run('bash', [script], env);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`array job 4242 task ${task} → shard ${task + Number(offset)}`);
      expect(result.stdout).toMatch(new RegExp(`Shard ${task + Number(offset)}: embedded 1 of 1, 0 failed on cpu`));
    }
    const merged = await runDermws('--library', library, 'embeddings', 'import', out, '--json');
    expect(merged.json).toMatchObject({ status: 'success', shards: 3, stored: 3 });
  });

  it('stops with the variable it lacks, and fails the task (for a resubmit) when the shard cannot run', async () => {
    const { root, planFolder } = await plannedLibrary(1, 1);
    const script = path.join(runners, 'slurm-embed.sbatch');
    const noPlan = await run('bash', [script], { ...process.env, SLURM_ARRAY_TASK_ID: '0', DERMWS_OUT: path.join(root, 'out'), DERMWS: dermwsCommand });
    expect(noPlan.code).not.toBe(0);
    expect(noPlan.stderr).toContain('set DERMWS_PLAN to the plan folder');
    const outOfRange = await run('bash', [script], {
      ...process.env,
      SLURM_ARRAY_TASK_ID: '3',
      DERMWS_PLAN: planFolder,
      DERMWS_OUT: path.join(root, 'out'),
      DERMWS: dermwsCommand,
    });
    expect(outOfRange.code).toBe(2);
    expect(outOfRange.stderr).toContain('Shard 3 is out of range');
  });
});
