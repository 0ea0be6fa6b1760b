#!/usr/bin/env python3
"""Run the shards of a dermws embedding plan on a Dask cluster.

One Dask task per shard; each task runs `dermws embed shard PLAN --shard K --out OUT` on the worker,
so the embedding is made by the workstation's own pipeline, and the shard files land in OUT.
Dask does the distributing and the retries; this script only defines the tasks and reports progress.

    python3 dask_embed.py PLAN_DIR --out OUT_DIR                        # a LocalCluster on this machine
    python3 dask_embed.py PLAN_DIR --out OUT_DIR --scheduler tcp://host:8786
    python3 dask_embed.py PLAN_DIR --out OUT_DIR --workers 4 --retries 2 --dermws "node /opt/dermws/bin/dermws.js"

dask-jobqueue users start their SLURMCluster/PBSCluster, and pass its scheduler address.
Then merge on the desktop: dermws embeddings import OUT_DIR

Exit status: 0 every shard ran; 1 some shards failed after their retries; 2 bad arguments or plan;
130 interrupted (running shards are cancelled; finished shards stay and are skipped on a rerun).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time


def read_shard_count(plan_dir):
    plan_file = os.path.join(plan_dir, "plan.json")
    try:
        with open(plan_file, encoding="utf-8") as handle:
            plan = json.load(handle)
    except FileNotFoundError:
        raise SystemExit(f"dask_embed: {plan_dir} is not an embedding plan: it has no plan.json")
    except (OSError, ValueError) as error:
        raise SystemExit(f"dask_embed: {plan_file} cannot be read as a plan: {error}")
    if plan.get("format") != "dermws-embedding-plan" or not isinstance(plan.get("shards"), list):
        raise SystemExit(f"dask_embed: {plan_file} is not an embedding plan (field format is {plan.get('format')!r})")
    return len(plan["shards"])


def run_shard(dermws, plan_dir, shard, out_dir, extra):
    """The task body, run on a Dask worker: one `dermws embed shard` process.

    A non-zero exit raises, so Dask retries the task (on any worker); per-image failures do not,
    because the shard ran and records them for the merge."""
    command = [*dermws, "embed", "shard", plan_dir, "--shard", str(shard), "--out", out_dir, "--json", *extra]
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        detail = completed.stdout.strip() or completed.stderr.strip()
        try:
            detail = json.loads(completed.stdout)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        raise RuntimeError(f"shard {shard}: dermws exited with {completed.returncode}: {detail[-2000:]}")
    return json.loads(completed.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", help="plan folder written by `dermws embed plan` (visible to every worker)")
    parser.add_argument("--out", required=True, help="folder for shard-K.npz/json (visible to every worker)")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler; default: start a LocalCluster")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--retries", type=int, default=2, help="times Dask retries a failed shard (default 2)")
    parser.add_argument("--shards", help="comma-separated shard numbers to run (default: all)")
    parser.add_argument("--root", help="where the plan's image root is mounted on the workers")
    parser.add_argument("--batch-size", type=int, help="images per inference batch")
    parser.add_argument(
        "--dermws",
        default=os.environ.get("DERMWS_CMD", "dermws"),
        help="command that runs dermws on the workers (default: $DERMWS_CMD or `dermws`)",
    )
    args = parser.parse_args(argv)

    plan_dir = os.path.abspath(args.plan)
    out_dir = os.path.abspath(args.out)
    count = read_shard_count(plan_dir)
    shards = list(range(count))
    if args.shards:
        try:
            shards = [int(value) for value in args.shards.split(",") if value.strip()]
        except ValueError:
            raise SystemExit(f"dask_embed: --shards must be comma-separated numbers; got {args.shards!r}")
        outside = [shard for shard in shards if shard < 0 or shard >= count]
        if outside:
            raise SystemExit(f"dask_embed: shard(s) {outside} are out of range: the plan has {count} shard(s), numbered 0 to {count - 1}")
    if args.workers < 1 or args.retries < 0:
        raise SystemExit("dask_embed: --workers must be at least 1 and --retries at least 0")
    dermws = shlex.split(args.dermws)
    extra = []
    if args.root:
        extra += ["--root", args.root]
    if args.batch_size:
        extra += ["--batch-size", str(args.batch_size)]

    # Imported here so --help and plan errors work without Dask installed.
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        # One thread per worker process: each shard already uses every core through onnxruntime.
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    started = time.monotonic()
    futures = [
        client.submit(run_shard, dermws, plan_dir, shard, out_dir, extra, key=f"dermws-shard-{shard}-{os.path.basename(plan_dir)}", retries=args.retries, pure=False)
        for shard in shards
    ]
    shard_of = {future.key: shard for future, shard in zip(futures, shards)}
    print(f"dask_embed: {len(shards)} shard(s) of {plan_dir} on {client.scheduler.address}, output {out_dir}", flush=True)
    done = 0
    failed = []
    try:
        for future in as_completed(futures):
            done += 1
            shard = shard_of[future.key]
            elapsed = time.monotonic() - started
            if future.status == "finished":
                result = future.result()
                print(
                    f"[{done}/{len(shards)}] shard {shard}: {result['status']}, {result['embedded']} of {result['images']} embedded, "
                    f"{len(result['failed'])} failed, on {result['provider']} ({elapsed:.0f}s)",
                    flush=True,
                )
            else:
                error = future.exception()
                failed.append((shard, str(error)))
                print(f"[{done}/{len(shards)}] shard {shard}: FAILED after {args.retries} retries: {error}", flush=True)
    except KeyboardInterrupt:
        print("dask_embed: interrupted; cancelling the shards still running (finished shards are kept).", file=sys.stderr, flush=True)
        client.cancel(futures)
        client.close()
        if cluster is not None:
            cluster.close()
        return 130
    client.close()
    if cluster is not None:
        cluster.close()
    if failed:
        print(f"dask_embed: {len(failed)} shard(s) failed: {', '.join(str(shard) for shard, _ in failed)}. Run again to retry them; finished shards are skipped.", file=sys.stderr)
        return 1
    print(f"dask_embed: every shard ran. Merge with: dermws embeddings import {out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
