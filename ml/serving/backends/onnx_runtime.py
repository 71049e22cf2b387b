"""The ``onnx`` backend: ONNX Runtime, CPUExecutionProvider, ``ORT_ENABLE_ALL`` graph optimisation,
the intra-op threads of the thread setting. It reads an ``.onnx`` file exported from the model file
(``onnx_export.ensure_onnx_export``) and refuses one that records another model version."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.serving.backends.onnx_files import (NO_ONNXRUNTIME, ONNX_INPUT, ONNX_OUTPUTS,
                                            ONNX_VERSION_KEY, BackendUnavailable, export_command,
                                            onnxruntime_available)

# ORT's graph optimisation levels, by the names the benchmark and the options use.
ORT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
              "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


class OnnxBackend:
    """ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(self, onnx_path: str | Path, version: str | None = None, threads: int | None = None,
                 optimization: str = "all", model_path: str | Path | None = None):
        if not onnxruntime_available():
            raise BackendUnavailable(NO_ONNXRUNTIME)
        import onnxruntime as ort

        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            source = model_path or "MODEL.safetensors"
            raise BackendUnavailable(
                f"No ONNX model at {onnx_path}. Export it from the model file: "
                f"{export_command(source, onnx_path)} (or set PNEUMOTHORAX_ONNX_MODEL / "
                "--onnx-model to where it is).")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or 0)  # 0: ORT's default (one per core)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_LEVELS[optimization])
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendUnavailable(f"{onnx_path} is not a readable ONNX model ({exc})") from exc
        self.path, self.optimization = onnx_path, optimization
        self.exported_from = self.session.get_modelmeta().custom_metadata_map.get(ONNX_VERSION_KEY, "")
        if version is not None and self.exported_from != version:
            raise BackendUnavailable(
                f"{onnx_path} was exported from model {self.exported_from or 'unknown'}, not from "
                f"{version}: export it again ({export_command(model_path or 'MODEL.safetensors', onnx_path)}).")

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask_logits, image_logits = self.session.run(
            list(ONNX_OUTPUTS), {ONNX_INPUT: np.ascontiguousarray(batch, dtype=np.float32)})
        return mask_logits, image_logits
