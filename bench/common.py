"""What the benchmarks share: the transformer-size options, FLUX.1 Fill's real size for --full, writing results."""

import json

FLUX_FILL_SIZE = {"hidden": 3072, "heads": 24, "double": 19, "single": 38}


def add_model_size_arguments(parser, hidden: int, heads: int, double: int, single: int) -> None:
    """--hidden / --heads / --double / --single for a random-weight Flux Fill of this size (the defaults given)."""
    parser.add_argument("--hidden", type=int, default=hidden, help="transformer width")
    parser.add_argument("--heads", type=int, default=heads, help="attention heads")
    parser.add_argument("--double", type=int, default=double, help="double-stream blocks")
    parser.add_argument("--single", type=int, default=single, help="single-stream blocks")


def use_full_size(args) -> None:
    """Set args to FLUX.1 Fill's size (what --full means)."""
    for name, value in FLUX_FILL_SIZE.items():
        setattr(args, name, value)


def write_results(path: str | None, results: dict) -> None:
    """The results as JSON at `path` (when one was given)."""
    if path:
        with open(path, "w") as handle:
            json.dump(results, handle, indent=1)
        print(f"wrote {path}")
