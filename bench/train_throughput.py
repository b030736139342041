"""Benchmark: training segments per second of each stage's model, at paper size and at mini size.

Each row times full training steps (forward, the stage's own loss function, backward, Adam) on random
3 s audio, so data loading is not part of it (see data_pipeline.py for that). A "segment" is one 3 s
input the model sees: an MSS step on a batch of B counts B, a triplet step counts 3·B (anchor,
positive, negative). On CUDA the steps run under bf16 autocast with channels_last, as the trainer does.
Run: ``tools/venv/bin/python bench/train_throughput.py [--device cuda] [--steps 3] [--batch 4]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from inmsrl.models.config import build_model
from inmsrl.tasks.mss import separation_losses
from inmsrl.tasks.triplet import triplet_losses

SOURCES = ("drums", "bass", "piano", "guitar", "residuals")
TARGETS = ["drums", "bass", "piano", "guitar"]
SEGMENT = 132300  # 3 s at 44.1 kHz
MINI_UNET = {"unet": {"channels": [4, 8, 16, 32, 64, 128]}}  # egs/mini_slakh/conf
MINI_MEL = {"mel_bands": 128}


def stage_models(mini: bool) -> dict[str, tuple[dict, str]]:
    """name -> (model config, kind of step) for the training stages 3-5."""
    unet, mel = (MINI_UNET, MINI_MEL) if mini else ({}, {})
    embedders = {"target_sources": TARGETS, **unet, **mel}
    return {
        "MSS separator (stage 3)": ({"type": "separator", "target_sources": ["drums"], **unet}, "mss"),
        "Clean extractors (stage 4)": ({"type": "clean", **embedders}, "triplet"),
        "Cascade extractors (stage 4)": ({"type": "cascade", **embedders}, "frozen"),
        "Cascade-FT (stage 5)": ({"type": "cascade", **embedders}, "e2e"),
    }


def step_function(model: torch.nn.Module, kind: str, batch: int, device: torch.device):
    """A closure running one training step; returns the number of 3 s segments it processed."""
    if kind == "frozen":
        for p in model.separation_parameters():
            p.requires_grad_(False)
        model.separator.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    roles = 1 if kind == "mss" else 3
    stems = torch.randn(batch, roles, len(SOURCES), SEGMENT, device=device) * 0.05
    rows = torch.arange(batch, device=device) % len(TARGETS)
    use_bf16 = device.type == "cuda"

    def step() -> int:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            if kind == "mss":
                losses = separation_losses(model, stems[:, 0], 0)
            else:
                losses = triplet_losses(model, stems, rows, 0.2, 1.0 if kind == "e2e" else 0.0)
        losses["loss"].backward()
        optimizer.step()
        return batch * roles

    return step


def segments_per_second(config: dict, kind: str, batch: int, steps: int, device: torch.device) -> float:
    model = build_model(config, SOURCES).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    model.train()
    step = step_function(model, kind, batch, device)
    step()  # warm-up: allocations, cuDNN algorithm choice
    if device.type == "cuda":
        torch.cuda.synchronize()
    begin, count = time.perf_counter(), 0
    for _ in range(steps):
        count += step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4, help="triplets or segments per step [4]")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per row [3]")
    parser.add_argument("--sizes", nargs="+", default=["paper", "mini"], choices=["paper", "mini"])
    args = parser.parse_args()
    device = torch.device(args.device)
    threads = torch.get_num_threads()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"
    print(f"device: {name}; batch {args.batch}; {args.steps} timed steps per row; 3 s segments")
    print(f"{'model':<30} {'size':>6} {'params':>12} {'segments/s':>11}")
    for size_name in args.sizes:
        for model_name, (config, kind) in stage_models(size_name == "mini").items():
            params = sum(p.numel() for p in build_model(config, SOURCES).parameters())
            rate = segments_per_second(config, kind, args.batch, args.steps, device)
            print(f"{model_name:<30} {size_name:>6} {params:>12,} {rate:>11.2f}")


if __name__ == "__main__":
    main()
