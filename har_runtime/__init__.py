"""Torch-free inference: ONNX Runtime + numpy only (what the BentoML service and the edge use).

Importing this package must never import torch, ZenML, MLflow or DVC: the Bento ships
onnxruntime, numpy and pydantic only.
"""
