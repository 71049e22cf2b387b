"""Seconds per training step of the U-Net in each CPU configuration, as ratios from one run.

    .venv/bin/python bench/train_step.py [--encoder tf_efficientnet_lite0] [--batch 8] [--steps 6]
                                         [--sizes 256 512] [--threads 2]

For each input size it times fp32 contiguous (the baseline), fp32 channels-last and, where
asked, bf16 autocast with channels-last, alternating the configurations round by round so that
a change in the machine's load hits all of them alike. A step is what ``ml.train`` does: forward,
the hybrid loss, backward, gradient clipping, AdamW. Prints the median seconds per step and the
speed-up against the baseline, and whether this CPU has native bf16 (without it, oneDNN emulates
bf16 and autocast is slower than fp32). Inputs are random: data loading is not timed (it is a
few per cent of a step). Numbers depend on what else the machine is doing: say so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ml.core.model import build_model  # noqa: E402
from ml.training.losses import HybridLoss  # noqa: E402
from ml.training.runtime import cpu_supports_bf16  # noqa: E402

CONFIGURATIONS = {  # name: (channels_last, bf16)
    "fp32": (False, False),
    "fp32 channels-last": (True, False),
    "bf16 channels-last": (True, True),
}


def make_step(encoder: str, batch: int, size: int, channels_last: bool, bf16: bool):
    torch.manual_seed(0)
    model = build_model(encoder, head_pooling="max")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = HybridLoss()
    images = torch.randn(batch, 1, size, size).contiguous(memory_format=memory_format)
    masks = (torch.rand(batch, 1, size, size) > 0.99).float()
    labels = masks.flatten(1).amax(1)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            mask_logits, class_logits = model(images)
        loss = loss_fn(mask_logits, class_logits, masks, labels)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    return step


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoder", default="tf_efficientnet_lite0")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=6, help="timed steps per configuration and size")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--configurations", nargs="+", default=list(CONFIGURATIONS),
                   choices=list(CONFIGURATIONS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    native = cpu_supports_bf16()
    print(f"torch {torch.__version__}, {args.threads} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if native else 'no (emulated)'}")
    print(f"{args.encoder}, batch {args.batch}, median of {args.steps} steps after one warm-up\n")
    print(f"{'size':>5}  {'configuration':<20} {'s/step':>7} {'vs fp32':>8}")
    for size in args.sizes:
        steps = {name: make_step(args.encoder, args.batch, size, *CONFIGURATIONS[name])
                 for name in args.configurations}
        for step in steps.values():
            step()  # warm-up: oneDNN picks its kernels on the first call
        seconds = {name: [] for name in steps}
        for _ in range(args.steps):  # alternate, so that load changes hit every configuration
            for name, step in steps.items():
                started = time.perf_counter()
                step()
                seconds[name].append(time.perf_counter() - started)
        baseline = statistics.median(seconds[args.configurations[0]])
        for name, samples in seconds.items():
            median = statistics.median(samples)
            print(f"{size:>5}  {name:<20} {median:>7.2f} {baseline / median:>7.2f}x")


if __name__ == "__main__":
    main()
