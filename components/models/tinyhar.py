"""TinyHAR baseline (Zhou et al., ISWC 2022).

"TinyHAR: A Lightweight Deep Learning Model Designed for Human Activity Recognition."
The paper's design, in five stages (shape comments use B batch, C sensor channels,
T window length, L downsampled length, F ``filter_num``):

1. individual (per-channel) temporal convolution: a Conv2d with kernel ``(k, 1)``
   over a ``(B, 1, T, C)`` "image" never mixes channels; 4 layers, stride 2 on
   every second layer, each Conv -> ReLU -> BatchNorm (the authors' ordering);
2. cross-channel interaction: a one-layer pre-norm transformer block whose tokens
   are the C sensor channels, applied independently at every time step;
3. cross-channel fusion: a fully connected layer mapping the ``C * F`` features of
   one time step to ``2F`` (ReLU);
4. temporal interaction: a one-layer LSTM (``2F`` units) over the L steps;
5. temporal aggregation: additive attention over the L steps, added to the last
   step through a learnable ``gamma`` (initialised at 0), then a linear classifier.

The authors' default (``filter_num=20``, transformer / FC / LSTM / temporal
attention) gives ~64k parameters on DSADS (45 channels, 75 samples, 19 classes).
There is no Python control flow on tensor values, so the model exports to ONNX
with a dynamic batch axis.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from components.models.spec import InputSpec


class ChannelSelfAttention(nn.Module):
    """Multi-head self-attention over tokens ``(N, S, D)`` (here: S = sensor channels)."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 16, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        inner = heads * dim_head
        # separate q/k/v projections rather than one fused Linear + chunk: chunk exports as an
        # opset-18 Split(num_outputs) that the down-conversion to opset 17 gets wrong
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.proj = nn.Linear(inner, dim)
        self.attn_drop = nn.Dropout(dropout)
        self.proj_drop = nn.Dropout(dropout)
        self.scale = dim_head**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, _ = x.shape
        # (N, S, D) -> (N, S, H*Dh) -> (N, H, S, Dh)
        q = self.to_q(x).reshape(n, s, self.heads, self.dim_head).transpose(1, 2)
        k = self.to_k(x).reshape(n, s, self.heads, self.dim_head).transpose(1, 2)
        v = self.to_v(x).reshape(n, s, self.heads, self.dim_head).transpose(1, 2)
        att = (q * self.scale) @ k.transpose(-2, -1)  # (N, H, S, S); scaling q is S/Dh times cheaper
        att = self.attn_drop(F.softmax(att, dim=-1))
        y = att @ v  # (N, H, S, Dh)
        y = y.transpose(1, 2).reshape(n, s, self.heads * self.dim_head)  # (N, S, H*Dh)
        return self.proj_drop(self.proj(y))  # (N, S, D)


class ChannelTransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 16, mlp_dim: int = 16, dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = ChannelSelfAttention(dim, heads, dim_head, dropout)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class TemporalAttention(nn.Module):
    """Additive attention over time, added to the last step: ``h_L + gamma * sum_t a_t h_t``."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc_1 = nn.Linear(dim, dim)
        self.fc_2 = nn.Linear(dim, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: (B, L, D)
        scores = self.fc_2(torch.tanh(self.fc_1(h)))  # (B, L, 1)
        weights = F.softmax(scores, dim=1)  # (B, L, 1)
        context = (weights * h).sum(dim=1)  # (B, D)
        return h[:, -1, :] + self.gamma * context  # (B, D)


def _conv_out_len(t: int, kernel: int, stride: int) -> int:
    return (t - kernel) // stride + 1


class TinyHAR(nn.Module):
    """TinyHAR: per-channel conv -> channel transformer -> FC fusion -> LSTM -> temporal attention.

    Args:
        spec: input shape/classes.
        filter_num: F, filters of every per-channel conv layer (paper: 20).
        nb_conv_layers: number of per-channel conv layers (paper: 4).
        filter_size: temporal kernel size (paper: 5).
        heads, dim_head, mlp_dim: cross-channel transformer sizes (authors' code: 4, 16, 16).
        dropout: dropout after the cross-channel interaction (authors' code: 0.1).
        temporal: ``"lstm"`` (paper) or ``"gru"``.
    """

    def __init__(
        self,
        spec: InputSpec,
        filter_num: int = 20,
        nb_conv_layers: int = 4,
        filter_size: int = 5,
        heads: int = 4,
        dim_head: int = 16,
        mlp_dim: int = 16,
        dropout: float = 0.1,
        temporal: str = "lstm",
    ):
        super().__init__()
        self.spec = spec
        c, f = spec.n_channels, filter_num

        # 1. individual temporal convolutions, stride 2 on the odd layers
        layers = []
        t = spec.window_len
        for i in range(nb_conv_layers):
            stride = 2 if i % 2 == 1 else 1
            layers += [
                nn.Conv2d(1 if i == 0 else f, f, (filter_size, 1), (stride, 1)),
                nn.ReLU(),
                nn.BatchNorm2d(f),
            ]
            t = _conv_out_len(t, filter_size, stride)
        if t < 1:
            raise ValueError(
                f"window_len={spec.window_len} is too short for {nb_conv_layers} conv layers of kernel {filter_size}"
            )
        self.conv = nn.Sequential(*layers)
        self.out_len = t  # L

        # 2. cross-channel interaction (tokens = sensor channels)
        self.channel_interaction = ChannelTransformerBlock(f, heads, dim_head, mlp_dim)
        self.dropout = nn.Dropout(dropout)
        # 3. cross-channel fusion
        self.channel_fusion = nn.Linear(c * f, 2 * f)
        # 4. temporal interaction
        if temporal == "lstm":
            self.rnn: nn.Module = nn.LSTM(2 * f, 2 * f, batch_first=True)
        elif temporal == "gru":
            self.rnn = nn.GRU(2 * f, 2 * f, batch_first=True)
        else:
            raise ValueError(f"temporal must be 'lstm' or 'gru', got {temporal!r}")
        # 5. temporal aggregation + classifier
        self.temporal_fusion = TemporalAttention(2 * f)
        self.head = nn.Linear(2 * f, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, T)
        b = x.shape[0]
        x = x.transpose(1, 2).unsqueeze(1)  # (B, 1, T, C)
        if self.training:
            # channels-last storage, same values: on CPU oneDNN's forward+backward of these (k, 1)
            # convs is ~2x faster (1 thread, batch 64: 0.14 -> 0.07 s); eval/export keep plain Conv
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.conv(x)  # (B, F, L, C)
        _, f, steps, c = x.shape  # steps = L
        x = x.permute(0, 2, 3, 1).reshape(b * steps, c, f)  # (B*L, C, F): one token per channel
        x = self.channel_interaction(x)  # (B*L, C, F)
        x = self.dropout(x)
        x = x.reshape(b, steps, c * f)  # (B, L, C*F)
        x = F.relu(self.channel_fusion(x))  # (B, L, 2F)
        h, _ = self.rnn(x)  # (B, L, 2F)
        z = self.temporal_fusion(h)  # (B, 2F)
        return self.head(z)  # (B, n_classes)
