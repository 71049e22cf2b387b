"""Export a run's training state (``last.pt``) as a model file, e.g. to evaluate where a run
ended rather than its best epoch.

    python -m ml.export runs/lite0-256/last.pt runs/lite0-256/last.safetensors

With ``--onnx``, export a model file as ONNX for the ``onnx`` inference backend
(``ml.serving.backends``): fp32, a dynamic batch axis, opset 18, the model version recorded in
its metadata (the backend refuses an ONNX file exported from another model file):

    python -m ml.export --onnx ml/weights/pneumothorax-unet.safetensors ml/weights/pneumothorax-unet.onnx

Put it next to the model file with the same stem (as above), or say where it is with
``PNEUMOTHORAX_ONNX_MODEL`` / ``ml.predict --onnx-model``. Needs ``onnx`` and ``onnxscript``.
``ml.predict --backend onnx`` and a worker on the onnx backend export it there by themselves
when it is missing or stale (``ml.serving.backends.ensure_onnx_export``); this command exports
unconditionally.
"""

from __future__ import annotations

import argparse

from ml.training.state import export_training_state


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state", help="a run's last.pt (with --onnx: the .safetensors model file)")
    parser.add_argument("model", help="the .safetensors model file to write (with --onnx: the .onnx file)")
    parser.add_argument("--onnx", action="store_true",
                        help="export the model file STATE as ONNX to MODEL, for the onnx backend")
    args = parser.parse_args(argv)
    if args.onnx:
        from ml.core.checkpoint import read_info
        from ml.serving.backends import export_onnx

        path = export_onnx(args.state, args.model)
        print(f"wrote {path}: ONNX of {read_info(args.state).version}")
        return
    info = export_training_state(args.state, args.model)
    print(f"wrote {args.model}: {info.version}, epoch {info.training['epoch']}")


if __name__ == "__main__":
    main()
