"""The torch-free side of deployment: load an exported bundle with onnxruntime and predict on raw
inputs (``Bundle``), and serve it, or a PyTorch artifact, over HTTP (``omnitune.serving.app``).

Nothing here imports torch, transformers, timm or torchaudio: a bundle runs with onnxruntime,
numpy, tokenizers, pillow and soundfile.
"""

from __future__ import annotations

from omnitune.serving.bundle import MANIFEST, Bundle, is_bundle

__all__ = ["MANIFEST", "Bundle", "is_bundle"]
