"""Plain 1-D CNN baseline ("CNN-HAR"-like).

Channels are the Conv1d input features, so every filter mixes all sensor channels
from the first layer on (unlike TinyHAR / DeepConvLSTM). Three blocks
Conv1d -> BatchNorm -> ReLU -> MaxPool(2), global average pooling over time, dropout,
linear classifier. Works for any window length (global pooling), so long as the
pooled length stays >= 1.

Shapes: B batch, C channels, T window length, D_i block widths.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from components.models.spec import InputSpec


class CNN(nn.Module):
    """1-D CNN: 3 x (Conv1d-BN-ReLU-MaxPool) -> global average pool -> dropout -> linear.

    Args:
        spec: input shape/classes.
        channels: output width of each conv block (default ``(64, 128, 128)``).
        kernel_size: temporal kernel size ("same" padding, odd sizes).
        pool: max-pool factor after each block (1 disables pooling).
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        spec: InputSpec,
        channels: Sequence[int] = (64, 128, 128),
        kernel_size: int = 5,
        pool: int = 2,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.spec = spec
        if spec.window_len // (pool ** len(channels)) < 1:
            raise ValueError(f"window_len={spec.window_len} is too short for {len(channels)} pool-{pool} blocks")
        blocks = []
        c_in = spec.n_channels
        for c_out in channels:
            blocks += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
            ]
            if pool > 1:
                blocks.append(nn.MaxPool1d(pool))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, T)
        h = self.features(x)  # (B, D_3, T / pool^3)
        # global average pooling as sum / length: Tensor.mean exports as an opset-18 ReduceMean
        # (axes as an input) that the down-conversion to opset 17 cannot handle
        z = h.sum(dim=-1) / h.shape[-1]  # (B, D_3)
        return self.head(self.dropout(z))  # (B, n_classes)
