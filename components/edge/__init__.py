"""Edge deployment: the bundle (build/verify) and the wearable deployment simulation.

ONNX Runtime + numpy only (matplotlib for the timeline plot), never torch.
"""
