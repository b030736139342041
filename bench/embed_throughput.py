"""Benchmark: evaluation (stage 8) throughput of the embedding models, per memory format.

Times ``model.embed`` in eval mode under ``torch.no_grad`` on random 10 s mixtures (the MES segment
length), for every embedded source at once and for one source (what a pseudo or visualisation item
asks for), with the default contiguous layout and with channels_last. Rows are measured side by side
in one run, so their ratios hold on a shared machine even where the absolute numbers do not.
Run: ``tools/venv/bin/python bench/embed_throughput.py [--device cuda] [--size mini|paper]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from inmsrl.models.config import build_model

SOURCES = ("drums", "bass", "piano", "guitar", "residuals")
TARGETS = ["drums", "bass", "piano", "guitar"]
SEGMENT = 441_000  # 10 s at 44.1 kHz
MINI = {"unet": {"channels": [4, 8, 16, 32, 64, 128]}, "mel_bands": 128}  # egs/mini_slakh/conf


def models(size: str) -> dict[str, dict]:
    extra = MINI if size == "mini" else {}
    direct_extra = {"unet": {"channels": [4, 8, 16, 32, 64, 5 * 128]}} if size == "mini" else {}
    return {
        "Clean": {"type": "clean", "target_sources": TARGETS, **extra},
        "Cascade": {"type": "cascade", "target_sources": TARGETS, **extra},
        "Direct": {"type": "direct", **direct_extra},
    }


def items_per_second(model: torch.nn.Module, inputs: torch.Tensor, sources, repeats: int) -> float:
    with torch.no_grad():
        model.embed(inputs, sources)  # warm-up (allocations, kernel selection)
        if inputs.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model.embed(inputs, sources)
        if inputs.is_cuda:
            torch.cuda.synchronize()
    return repeats * inputs.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", choices=("mini", "paper"), default="mini")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"# embed throughput, {args.size} models, batch {args.batch} × 10 s, {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':<10} {'sources':<8} {'contiguous it/s':>16} {'channels_last it/s':>19} {'ratio':>6}")
    for name, config in models(args.size).items():
        model = build_model(config, SOURCES).to(device).eval()
        stems = 0.05 * torch.randn(args.batch, len(SOURCES), SEGMENT, device=device)
        inputs = stems if model.takes_stems else stems.sum(dim=1)
        for sources in (None, ["piano"]):
            model.to(memory_format=torch.contiguous_format)
            plain = items_per_second(model, inputs, sources, args.repeats)
            model.to(memory_format=torch.channels_last)
            last = items_per_second(model, inputs, sources, args.repeats)
            label = "all" if sources is None else "one"
            print(f"{name:<10} {label:<8} {plain:>16.2f} {last:>19.2f} {last / plain:>6.2f}")


if __name__ == "__main__":
    main()
