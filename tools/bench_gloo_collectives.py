#!/usr/bin/env python3
"""Times c10d's collectives on Gloo over 127.0.0.1: the ones data-parallel `perpo train` uses.

    .venv/bin/python tools/bench_gloo_collectives.py [--floats 13800000] [--world 2] [--reps 5]

Each rank (one process, one thread) holds --floats fp32 values (13.8 M: the medium model of
tools/bench_ddp.sh); prints rank 0's mean milliseconds per call of: all-reduce of all of them
(plain data parallel), reduce-scatter of all of them and all-gather of 1 / world each (ZeRO-1 with
distributed.reduce_scatter true), broadcast of 1 / world (one owner's weights, ZeRO-1 false).
Needs torch (the .venv that tools/setup.sh makes).
"""
import argparse
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(rank, world, floats, reps, port):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    share = floats // world
    full = torch.randn(share * world)
    part = torch.empty(share)
    gathered = torch.empty(share * world)
    # The names torch 2.13 prefers (the older ones warn), the older ones before.
    all_gather = getattr(dist, "all_gather_single", dist.all_gather_into_tensor)
    reduce_scatter = getattr(dist, "reduce_scatter_single", dist.reduce_scatter_tensor)
    calls = [("all-reduce (all)", lambda: dist.all_reduce(full)),
             ("reduce-scatter (all)", lambda: reduce_scatter(part, full)),
             ("all-gather (1/world each)", lambda: all_gather(gathered, part)),
             ("broadcast (1/world)", lambda: dist.broadcast(part, 0))]
    for name, call in calls:
        call()  # warm-up
        dist.barrier()
        start = time.perf_counter()
        for _ in range(reps):
            call()
        dist.barrier()
        if rank == 0:
            print(f"{name:28s} {(time.perf_counter() - start) / reps * 1000:8.1f} ms")
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floats", type=int, default=13_800_000)
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"Gloo on 127.0.0.1, {args.world} ranks, {args.floats} fp32 values, "
          f"mean of {args.reps} calls; {os.cpu_count()} cores")
    mp.spawn(run, args=(args.world, args.floats, args.reps, free_port()), nprocs=args.world)


if __name__ == "__main__":
    main()
