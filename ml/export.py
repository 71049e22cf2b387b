"""Export a run's training state (``last.pt``) as a model file, e.g. to evaluate where a run
ended rather than its best epoch.

    python -m ml.export runs/lite0-256/last.pt runs/lite0-256/last.safetensors
"""

from __future__ import annotations

import argparse

from ml.training.state import export_training_state


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state", help="a run's last.pt")
    parser.add_argument("model", help="the .safetensors model file to write")
    args = parser.parse_args(argv)
    info = export_training_state(args.state, args.model)
    print(f"wrote {args.model}: {info.version}, epoch {info.training['epoch']}")


if __name__ == "__main__":
    main()
