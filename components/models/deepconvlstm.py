"""DeepConvLSTM baseline (Ordóñez & Roggen, Sensors 2016).

"Deep Convolutional and LSTM Recurrent Neural Networks for Multimodal Wearable
Activity Recognition." The window is treated as a one-plane image ``(T, C)``:

* 4 convolution layers, 64 filters of kernel ``(5, 1)`` each (time only, no
  padding, stride 1), ReLU, so the channels are never mixed by the convolutions;
* the ``F x C`` feature maps of each remaining step are flattened into one vector;
* dropout (p = 0.5) on the LSTM input, 2 stacked LSTM layers of 128 units
  (dropout 0.5 between them);
* a linear (softmax) classifier on the last time step.

Shapes: B batch, C channels, T window length, T' = T - 4 * (k - 1), F filters, H units.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from components.models.spec import InputSpec


class DeepConvLSTM(nn.Module):
    """DeepConvLSTM: 4 temporal conv layers -> dropout -> 2 x LSTM -> linear on the last step.

    Args:
        spec: input shape/classes.
        n_filters: filters per conv layer (paper: 64).
        filter_size: temporal kernel size (paper: 5).
        n_conv_layers: number of conv layers (paper: 4).
        lstm_hidden: LSTM units (paper: 128).
        lstm_layers: stacked LSTM layers (paper: 2).
        dropout: dropout before the LSTM and between LSTM layers (paper: 0.5).
    """

    def __init__(
        self,
        spec: InputSpec,
        n_filters: int = 64,
        filter_size: int = 5,
        n_conv_layers: int = 4,
        lstm_hidden: int = 128,
        lstm_layers: int = 2,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.spec = spec
        out_len = spec.window_len - n_conv_layers * (filter_size - 1)
        if out_len < 1:
            raise ValueError(
                f"window_len={spec.window_len} is too short for {n_conv_layers} conv layers of kernel {filter_size}"
            )
        self.out_len = out_len  # T'
        layers = []
        for i in range(n_conv_layers):
            layers += [nn.Conv2d(1 if i == 0 else n_filters, n_filters, (filter_size, 1)), nn.ReLU()]
        self.conv = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            n_filters * spec.n_channels,
            lstm_hidden,
            num_layers=lstm_layers,
            batch_first=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.head = nn.Linear(lstm_hidden, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, T)
        b = x.shape[0]
        x = x.transpose(1, 2).unsqueeze(1)  # (B, 1, T, C)
        x = self.conv(x)  # (B, F, T', C)
        _, f, t, c = x.shape
        x = x.permute(0, 2, 1, 3).reshape(b, t, f * c)  # (B, T', F*C)
        x = self.dropout(x)
        h, _ = self.lstm(x)  # (B, T', H)
        return self.head(h[:, -1, :])  # (B, n_classes)
