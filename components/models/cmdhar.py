"""CMD-HAR: cross-modal disentanglement for wearable human activity recognition.

A reconstruction of the architecture described in arXiv 2503.21843 (no public code):

1. *Modality decomposition* - the channels are split by ``spec.modality_groups`` and
   each group (modality) gets its own lightweight encoder: per-channel temporal
   convolutions (shared across the group's channels), depthwise-separable
   split-attention blocks (channel expansion + ResNeSt radix attention), then
   spatiotemporal attention (self-attention across the group's channels at every
   time step, then self-attention over time within every channel with learned positions,
   then attention pooling over time and over channels) -> ``u_m`` (d_model).
2. *Disentanglement* (MISA, Hazarika et al. 2020) - one shared encoder ``S`` for all
   modalities (``h_c = S(u_m)``) and one private encoder per modality
   (``h_p = P_m(u_m)``), trained with CMD similarity, soft-orthogonality difference
   and reconstruction losses (see :mod:`components.models.losses`).
3. *Fusion* - a 1-layer transformer encoder over the ``2M`` tokens
   ``[h_p^1..h_p^M, h_c^1..h_c^M]`` (+ per-token modality/type embeddings), masked
   attention pooling, MLP classifier.
4. *Auxiliary heads* - one linear classifier per modality on ``h_p + h_c``, used for
   the multi-task loss and for OGM-GE gradient-modulation scores.

**Batched modalities.** The M modality encoders have separate weights but run as *one*
set of ops: every per-modality weight is stored with the modality as its leading
(``M * k`` rows, modality-major) axis, convolutions are grouped with ``groups=M``,
per-modality linear layers are batched matmuls over an ``M`` axis. Groups of unequal
size are padded to the largest group with an all-zero channel that is masked out of
channel attention and pooling. This is numerically the same model family as M
separate encoders, with ~M times fewer (and larger) kernels - which is what matters
for batch-1 CPU latency and training speed. :meth:`CMDHAR.encoder_parameters` hands
each modality its rows of those tensors (:class:`ParamSlice`), so OGM-GE still scales
each modality's gradients separately.

``forward(x, modality_mask=None) -> logits`` is what is exported and served;
``forward_train`` also returns the auxiliary logits and the representation losses.
Absent modalities (``modality_mask == 0``) are zeroed at the input, their tokens are
zeroed, and they are removed from every fusion attention with an additive ``-1e4``
mask (no Python control flow on tensor values, so ONNX export keeps it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from components.models import losses
from components.models.spec import InputSpec

NEG = -1e4  # additive attention mask value: exp(-1e4) == 0 in float32, never NaN


class ParamSlice:
    """One modality's rows ``param[rows]`` of a batched (modality-major) parameter.

    Duck-types the bits of ``nn.Parameter`` that gradient modulation uses: ``grad``
    is a *view* into ``param.grad`` (so in-place scaling only touches this modality's
    rows; assigning to it copies into those rows), ``dim()``, ``numel()``, ``shape``.
    """

    __slots__ = ("param", "rows")

    def __init__(self, param: nn.Parameter, rows: slice):
        self.param, self.rows = param, rows

    @property
    def grad(self) -> torch.Tensor | None:
        g = self.param.grad
        return None if g is None else g[self.rows]

    @grad.setter
    def grad(self, value: torch.Tensor | None) -> None:
        with torch.no_grad():
            if self.param.grad is None:
                self.param.grad = torch.zeros_like(self.param)
            self.param.grad[self.rows] = 0.0 if value is None else value

    @property
    def data(self) -> torch.Tensor:
        return self.param.data[self.rows]

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def dim(self) -> int:
        return self.data.dim()

    def numel(self) -> int:
        return self.data.numel()

    def __repr__(self) -> str:
        return f"ParamSlice(shape={tuple(self.shape)}, rows={self.rows})"


def _batched(m: int, *shape: int, std: float | None = None, fill: float | None = None) -> nn.Parameter:
    """A ``(m, *shape)`` parameter: N(0, std) (default ``1/sqrt(shape[0])``) or a constant."""
    if fill is not None:
        return nn.Parameter(torch.full((m, *shape), float(fill)))
    std = 1.0 / math.sqrt(3 * shape[0]) if std is None else std  # nn.Linear-like (kaiming-uniform a=sqrt(5))
    return nn.Parameter(torch.randn(m, *shape) * std)


# ---------------------------------------------------------------------------------
# batched (all modalities at once) modality encoder
# ---------------------------------------------------------------------------------
def _depthwise_conv(x: torch.Tensor, weight: torch.Tensor, padding: int, fast_backward: bool) -> torch.Tensor:
    """Depthwise temporal ``conv2d(x, weight, groups=C)`` on ``(N, C, 1, L)``.

    ``fast_backward`` runs it in channels-last memory format (same numbers): on CPU that
    kernel's backward is ~4x faster, so training uses it; eval/export keeps the plain
    ``Conv`` node.
    """
    if fast_backward:
        x = x.contiguous(memory_format=torch.channels_last)
    y = F.conv2d(x, weight, padding=(0, padding), groups=x.shape[1])
    return y.contiguous() if fast_backward else y


class SplitAttnBlock(nn.Module):
    """Depthwise-separable temporal conv with ResNeSt split (radix) attention, M modalities.

    ``(N, M*F, 1, L) -> (N, M*F, 1, L)``: per modality, a depthwise temporal conv + BN,
    then pointwise *channel expansion* ``F -> R*F`` + ReLU; the ``R`` splits are mixed
    with per-channel softmax weights computed (2-layer bottleneck) from the time means
    of all splits; residual, ReLU. Pointwise layers are batched matmuls over the
    modality axis (one kernel for all modalities, cheaper than grouped convs in both
    torch and ONNX Runtime); the depthwise conv is a 2-D conv with a ``(1, k)`` kernel
    (ONNX Runtime has fast blocked kernels for those, not for 1-D). With ``radix == 2``
    the softmax over the two splits is computed as ``sigmoid(l_0 - l_1)`` (the same
    function; ``fc2`` outputs the difference directly).
    """

    def __init__(self, m: int, f: int, radix: int = 2, kernel: int = 5, hidden: int = 8):
        super().__init__()
        self.m, self.f, self.radix, self.pad = m, f, radix, kernel // 2
        n_att = f if radix == 2 else radix * f
        self.dw_weight = nn.Parameter(torch.empty(m * f, 1, 1, kernel))
        nn.init.kaiming_uniform_(self.dw_weight, a=math.sqrt(5))
        self.bn = nn.BatchNorm2d(m * f)
        self.w_expand = _batched(m, radix * f, f, std=math.sqrt(2.0 / f))  # rows ordered (R, F)
        self.w_fc1 = _batched(m, radix * f, hidden, std=1.0 / math.sqrt(radix * f))  # every split's mean
        self.b_fc1 = _batched(m, 1, hidden, fill=0.0)
        self.w_fc2 = _batched(m, hidden, n_att, std=1.0 / math.sqrt(hidden))
        self.b_fc2 = _batched(m, 1, n_att, fill=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, _, length = x.shape
        m, f, r = self.m, self.f, self.radix
        fast = self.training and x.device.type == "cpu"
        z = self.bn(_depthwise_conv(x, self.dw_weight, self.pad, fast)).reshape(n, m, f, length)
        s = F.relu(torch.matmul(self.w_expand, z))  # (N, M, R*F, L)
        gap = s.mean(-1).transpose(0, 1)  # (M, N, R*F)
        h = F.relu(torch.baddbmm(self.b_fc1, gap, self.w_fc1))  # (M, N, hidden)
        logit = torch.baddbmm(self.b_fc2, h, self.w_fc2).transpose(0, 1).unsqueeze(-1)  # (N, M, F or R*F, 1)
        if r == 2:
            a = torch.sigmoid(logit)  # weight of split 0; split 1 gets 1 - a
            s0, s1 = torch.split(s, [f, f], dim=2)  # (N, M, F, L) each
            out = s1 + a * (s0 - s1)
        else:
            att = logit.reshape(n, m, r, f, 1).softmax(dim=2)  # softmax over radix
            out = (att * s.reshape(n, m, r, f, length)).sum(2)  # (N, M, F, L)
        return F.relu(x + out.reshape(x.shape))


class ModalityEncoders(nn.Module):
    """All M modality encoders at once: ``(B, C, T)`` -> ``u`` ``(M, B, d_model)``.

    Per modality: every channel of the group goes through the same temporal conv stack
    (stem conv + ``n_blocks`` split-attention blocks, max-pooling in between, so the
    parameters do not grow with the group size). Spatiotemporal attention: a learned
    channel embedding, single-head self-attention across the group's channels at every
    time step (pre-LN, residual); with ``temporal``, single-head self-attention over the
    ``L`` time steps of every channel with a learned position embedding (pre-LN, residual:
    the sequence model over time, so the order of movements counts, not only their mix);
    attention pooling over time (per channel), attention pooling over channels -> ``(F,)``;
    ``Linear(F, d)`` + LayerNorm -> ``u_m``. Because the channels attend to each other
    before time is pooled, they meet while their timing is still there. ``attention=False``
    replaces all of it with means over time and channels.
    """

    def __init__(
        self,
        groups: list[list[int]],
        n_channels: int,
        d_model: int,
        n_filters: int,
        attention: bool,
        kernel: int = 5,
        radix: int = 2,
        n_blocks: int = 2,
        window_len: int | None = None,
        temporal: bool = False,
    ):
        super().__init__()
        m, f = len(groups), n_filters
        cmax = max(len(g) for g in groups)
        self.m, self.f, self.cmax, self.attention = m, f, cmax, attention
        self.temporal = bool(temporal and attention)
        if self.temporal and not window_len:
            raise ValueError("temporal attention needs the window length (its position embedding has one row per step)")
        # gather order: channel-slot major, modality minor -> (B*Cmax, M, 1, T) by a reshape;
        # index n_channels is an all-zero pad channel (appended only if a group is short)
        self.padded = any(len(g) < cmax for g in groups)
        idx = [g[c] if c < len(g) else n_channels for c in range(cmax) for g in groups]
        self.register_buffer("gather_idx", torch.tensor(idx, dtype=torch.long), persistent=False)
        valid = torch.tensor([[1.0 if c < len(g) else 0.0 for c in range(cmax)] for g in groups])  # (M, Cmax)
        self.register_buffer("pad_mask", ((1.0 - valid) * NEG)[:, None, :], persistent=False)  # (M, 1, Cmax)
        self.register_buffer("chan_weight", (valid / valid.sum(1, keepdim=True))[:, :, None], persistent=False)

        # stem: k=7, stride 4 (T -> T/4) in one conv, no max-pool
        self.stem = nn.Conv2d(m, m * f, (1, 7), stride=(1, 4), padding=(0, 3), groups=m, bias=False)
        self.stem_bn = nn.BatchNorm2d(m * f)
        self.blocks = nn.ModuleList(SplitAttnBlock(m, f, radix, kernel) for _ in range(n_blocks))
        self.chan_emb = nn.Parameter(torch.zeros(m, cmax, f))  # (M, Cmax, F)
        if attention:
            self.w_time_pool = _batched(m, 1, f, std=0.02)  # score vectors (a bias is softmax-invariant)
            # LayerNorm without affine: its scale/shift fold exactly into w_qkv / b_qkv
            self.w_qkv = _batched(m, f, 3 * f, std=1.0 / math.sqrt(f))
            self.b_qkv = _batched(m, 1, 3 * f, fill=0.0)
            self.w_o = _batched(m, f, f, std=1.0 / math.sqrt(f))
            self.b_o = _batched(m, 1, f, fill=0.0)
            self.w_chan_pool = _batched(m, f, 1, std=0.02)
        if self.temporal:
            length = (window_len - 1) // 4 + 1  # after the stem (k 7, stride 4, padding 3)
            for _ in range(n_blocks - 1):
                length = -(-length // 2)  # each later block: max-pool 2, ceil mode
            self.time_emb = nn.Parameter(torch.randn(m, length, f) * 0.02)  # (M, L, F)
            self.w_t_qkv = _batched(m, f, 3 * f, std=1.0 / math.sqrt(f))
            self.b_t_qkv = _batched(m, 1, 3 * f, fill=0.0)
            self.w_t_o = _batched(m, f, f, fill=0.0)  # zero: the block starts as the identity
            self.b_t_o = _batched(m, 1, f, fill=0.0)
        self.w_proj = _batched(m, f, d_model, std=1.0 / math.sqrt(f))
        self.b_proj = _batched(m, 1, d_model, fill=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        m, f, cmax = self.m, self.f, self.cmax
        if self.padded:
            x = F.pad(x, (0, 0, 0, 1))  # channel index C is all zeros
        z = x.index_select(1, self.gather_idx).reshape(b * cmax, m, 1, t)  # every channel separately
        z = F.relu(self.stem_bn(self.stem(z)))  # (B*Cmax, M*F, 1, T/4)
        for i, block in enumerate(self.blocks):
            if i > 0:  # max-pool 2 over time (1-D op: much cheaper than MaxPool2d in eager torch)
                z = F.max_pool1d(z.squeeze(2), 2, ceil_mode=True).unsqueeze(2)
            z = block(z)  # (B*Cmax, M*F, 1, L)
        if self.attention:
            return self._attend_per_step(z, b)
        z = z.reshape(b * cmax, m, f, z.shape[-1]).mean(-1)  # (B*Cmax, M, F)  mean over time
        z = z.reshape(b, cmax, m, f).transpose(1, 2) + self.chan_emb  # (B, M, Cmax, F)
        z = (z * self.chan_weight).sum(-2) if self.padded else z.mean(-2)  # (B, M, F)  mean over channels
        return self._project(z)

    def _channel_attention(self, z: torch.Tensor) -> torch.Tensor:
        """Self-attention across the group's channels (pre-LN, residual): ``(M, B, L, Cmax, F)``.
        Modality-major, so each projection is one ``bmm`` over M."""
        m, b, length, cmax, f = z.shape
        h = F.layer_norm(z, (f,)).reshape(m, b * length * cmax, f)
        qkv = torch.baddbmm(self.b_qkv, h, self.w_qkv).reshape(m, b * length, cmax, 3 * f)
        q, k, v = qkv[..., :f], qkv[..., f : 2 * f], qkv[..., 2 * f :]
        mask = self.pad_mask[:, None] if self.padded else None  # (M, 1, 1, Cmax)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).reshape(m, b * length * cmax, f)
        return z + torch.baddbmm(self.b_o, y, self.w_o).reshape(m, b, length, cmax, f)

    def _temporal_attention(self, z: torch.Tensor) -> torch.Tensor:
        """Self-attention over time within every channel stream (pre-LN, residual, learned
        positions): ``(M, B, L, Cmax, F)`` -> the same shape."""
        m, b, length, cmax, f = z.shape
        z = z.transpose(2, 3) + self.time_emb[:, None, None]  # (M, B, Cmax, L, F)
        h = F.layer_norm(z, (f,)).reshape(m, b * cmax * length, f)
        # 4-D for attention: the ONNX exporter takes no other rank
        qkv = torch.baddbmm(self.b_t_qkv, h, self.w_t_qkv).reshape(m, b * cmax, length, 3 * f)
        q, k, v = qkv[..., :f], qkv[..., f : 2 * f], qkv[..., 2 * f :]
        y = F.scaled_dot_product_attention(q, k, v).reshape(m, b * cmax * length, f)  # (M, N, F)
        z = z + torch.baddbmm(self.b_t_o, y, self.w_t_o).reshape(m, b, cmax, length, f)
        return z.transpose(2, 3)  # (M, B, L, Cmax, F)

    def _attend_per_step(self, z: torch.Tensor, b: int) -> torch.Tensor:
        """Channel attention at every time step, temporal attention, then pooling over time
        and channels.

        ``z`` ``(B*Cmax, M*F, 1, L)`` -> ``u`` ``(M, B, d)``. The channels of a group meet
        while their timing is still there, so the phase between body positions (left vs
        right leg in gait) can be used. Everything runs modality-major: every per-modality
        projection is one ``bmm`` over M.
        """
        m, f, cmax, length = self.m, self.f, self.cmax, z.shape[-1]
        z = z.reshape(b, cmax, m, f, length).permute(2, 0, 4, 1, 3)  # (M, B, L, Cmax, F)
        z = self._channel_attention(z + self.chan_emb[:, None, None])
        if self.temporal:
            z = self._temporal_attention(z)
        a = (z * self.w_time_pool[:, None, None]).sum(-1, keepdim=True).softmax(dim=2)  # (M, B, L, Cmax, 1)
        z = (a * z).sum(2)  # (M, B, Cmax, F)       pool over time
        s = torch.matmul(z, self.w_chan_pool[:, None])  # (M, B, Cmax, 1)
        if self.padded:
            s = s + self.pad_mask.transpose(-1, -2)[:, None]
        return self._project((s.softmax(dim=-2) * z).sum(-2).transpose(0, 1))  # (B, M, F) in

    def _project(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, M, F)`` -> ``u`` ``(M, B, d)``: per-modality Linear + LayerNorm."""
        u = torch.baddbmm(self.b_proj, z.transpose(0, 1), self.w_proj)  # (M, B, d)
        return F.layer_norm(u, u.shape[-1:])


# ---------------------------------------------------------------------------------
# fusion
# ---------------------------------------------------------------------------------
class AttnPool(nn.Module):
    """Attention pooling over axis ``-2``: ``(..., N, D) -> (..., D)``; mean if disabled."""

    def __init__(self, dim: int, enabled: bool = True):
        super().__init__()
        self.enabled = enabled
        self.score = nn.Linear(dim, 1) if enabled else None

    def forward(self, x: torch.Tensor, add_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.score is None:
            if add_mask is None:
                return x.mean(-2)
            w = (add_mask == 0).to(x.dtype).unsqueeze(-1)  # (..., N, 1), 1 = valid
            return (x * w).sum(-2) / w.sum(-2).clamp(min=1.0)
        s = self.score(x)  # (..., N, 1)
        if add_mask is not None:
            s = s + add_mask.unsqueeze(-1)
        return (s.softmax(dim=-2) * x).sum(-2)


class SelfAttention(nn.Module):
    """Pre-LN multi-head self-attention with an optional additive key mask."""

    def __init__(self, dim: int, n_heads: int = 1, dropout: float = 0.0):
        super().__init__()
        assert dim % n_heads == 0
        self.n_heads, self.head_dim = n_heads, dim // n_heads
        self.ln = nn.LayerNorm(dim)
        # one qkv Linear; q/k/v are taken by indexing (Gather), never chunk/unbind, which
        # export as an opset-18 Split(num_outputs) that the down-conversion mishandles
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, N, D); key_mask: (B, N) additive (0 valid, NEG absent)
        b, n, d = x.shape
        qkv = self.qkv(self.ln(x)).reshape(b, n, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)  # (B, H, N, hd)
        return x + self.drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))


class FusionLayer(nn.Module):
    """One pre-LN transformer encoder layer with an additive key mask."""

    def __init__(self, dim: int, n_heads: int, ff_mult: int = 2, dropout: float = 0.1):
        super().__init__()
        self.attn = SelfAttention(dim, n_heads, dropout)
        self.ln = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attn(x, key_mask)
        return x + self.ff(self.ln(x))


@dataclass
class CMDHAROutput:
    """What :meth:`CMDHAR.forward_train` returns (all tensors).

    Attributes:
        logits: ``(B, K)`` fused class logits.
        aux_logits: ``(M, B, K)`` per-modality auxiliary logits.
        sim: CMD similarity loss (mean over modality pairs of shared reps).
        diff: soft-orthogonality loss (mean over private/shared and private/private pairs).
        recon: reconstruction MSE (mean over modalities; targets ``u_m`` detached).
        modality_mask: ``(B, M)`` the mask used in fusion (after modality dropout).
    """

    logits: torch.Tensor
    aux_logits: torch.Tensor
    sim: torch.Tensor
    diff: torch.Tensor
    recon: torch.Tensor
    modality_mask: torch.Tensor


# ---------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------
class CMDHAR(nn.Module):
    """CMD-HAR classifier.

    Args:
        spec: input structure (channels, window length, classes, modality groups).
        d_model: width of ``u_m``, ``h_p``, ``h_c`` and the fusion tokens.
        n_filters: conv filters per channel in the modality encoders.
            The defaults (24, 12) are the widest step of ``(32, 16), (28, 14), (24, 12), ...``
            within the size budget (<= 0.63x TinyHAR's parameters on DSADS and USC-HAD;
            docs/decisions/clean-protocol.md "Model size").
        n_heads: heads of the fusion transformer.
        dropout: dropout in fusion and classifier.
        cmd_moments: K of the CMD loss.
        disentangle: False -> one private-style head per modality (no shared
            encoder, M tokens) and sim/diff/recon are zero.
        attention: False -> channel and temporal self-attention, attention pooling and
            the fusion transformer are replaced with (masked) mean pooling.
        temporal: self-attention over time within every channel before time is pooled
            (the encoder's sequence model; needs ``attention``).
        decompose: False -> one encoder over all channels treated as one group
            ("all"); ``modality_mask`` still has one column per spec group and
            zeroes that group's channels.
        n_blocks: split-attention blocks per modality encoder.
        radix: ResNeSt radix (channel expansion factor) of those blocks.
        kernel: temporal kernel size of the encoder convolutions.

    ``use_modulation`` (attribute, default False) is read by the trainer: OGM-GE gradient
    modulation, set by the registry to True for ``cmdhar-with-modulation`` (off by default:
    it did not help on validation subjects, docs/model_card.md "Ablations").
    """

    def __init__(
        self,
        spec: InputSpec,
        d_model: int = 24,
        n_filters: int = 12,
        n_heads: int = 4,
        dropout: float = 0.1,
        cmd_moments: int = 5,
        disentangle: bool = True,
        attention: bool = True,
        decompose: bool = True,
        n_blocks: int = 2,
        radix: int = 2,
        kernel: int = 5,
        temporal: bool = True,
    ):
        super().__init__()
        self.spec = spec
        self.disentangle, self.attention, self.decompose = disentangle, attention, decompose
        self.cmd_moments = cmd_moments
        self.use_modulation = False

        groups = {k: list(v) for k, v in spec.modality_groups.items()}
        grouped = {i for v in groups.values() for i in v}
        leftover = [i for i in range(spec.n_channels) if i not in grouped]
        if not groups:
            groups = {"all": list(range(spec.n_channels))}
        elif leftover:
            groups["other"] = leftover
        self.input_groups = list(groups)  # columns of modality_mask
        membership = torch.zeros(len(groups), spec.n_channels)  # (M_in, C)
        for g, idx in enumerate(groups.values()):
            membership[g, idx] = 1.0
        self.register_buffer("group_membership", membership, persistent=False)

        if decompose:
            enc_groups = groups
        else:
            enc_groups = {"all": sorted(i for v in groups.values() for i in v)}
        self.modalities = list(enc_groups)  # encoder names (keys of encoder_parameters)
        m = len(self.modalities)
        self.n_modalities = m

        # optional input standardisation (identity by default; set_normalization)
        self.register_buffer("in_mean", torch.zeros(spec.n_channels))
        self.register_buffer("in_std", torch.ones(spec.n_channels))

        self.encoders = ModalityEncoders(
            list(enc_groups.values()),
            spec.n_channels,
            d_model,
            n_filters,
            attention,
            kernel,
            radix,
            n_blocks,
            window_len=spec.window_len,
            temporal=temporal,
        )
        # private heads P_m (batched): Linear(d, d) + Sigmoid per modality
        self.w_private = _batched(m, d_model, d_model)
        self.b_private = _batched(m, 1, d_model, fill=0.0)
        if disentangle:
            self.shared = nn.Sequential(nn.Linear(d_model, d_model), nn.Sigmoid())
            self.w_decoder = _batched(m, d_model, d_model)  # decoders D_m
            self.b_decoder = _batched(m, 1, d_model, fill=0.0)
            n_tokens = 2 * m
            pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
        else:
            self.shared, self.w_decoder, self.b_decoder = None, None, None
            n_tokens = m
            pairs = []
        self.register_buffer("pair_i", torch.tensor([p[0] for p in pairs], dtype=torch.long), persistent=False)
        self.register_buffer("pair_j", torch.tensor([p[1] for p in pairs], dtype=torch.long), persistent=False)
        self.n_tokens = n_tokens
        # learned embedding per fusion token (modality x type private/shared)
        self.token_emb = nn.Parameter(torch.randn(n_tokens, d_model) * 0.02)
        self.fusion = FusionLayer(d_model, n_heads, dropout=dropout) if attention else None
        self.fusion_ln = nn.LayerNorm(d_model)
        self.pool = AttnPool(d_model, enabled=attention)
        self.classifier = nn.Sequential(
            nn.Linear(d_model, d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, spec.n_classes)
        )
        # auxiliary heads A_m (batched): Linear(d, K) per modality
        self.w_aux = _batched(m, d_model, spec.n_classes)
        self.b_aux = _batched(m, 1, spec.n_classes, fill=0.0)

    # -- helpers -----------------------------------------------------------------------
    def set_normalization(self, mean, std) -> None:
        """Store per-channel input mean/std (applied inside forward, so exported too)."""
        self.in_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).reshape(-1))
        self.in_std.copy_(torch.as_tensor(std, dtype=torch.float32).reshape(-1).clamp(min=1e-6))

    def encoder_parameters(self) -> dict[str, list[ParamSlice]]:
        """Modality name -> that modality's rows of the encoder and private-head parameters.

        Every such parameter is modality-major along dim 0 (``M * k`` rows), so
        modality ``i`` owns rows ``[i*k, (i+1)*k)``; see :class:`ParamSlice`.
        """
        m = self.n_modalities
        params = [*self.encoders.parameters(), self.w_private, self.b_private]
        out: dict[str, list[ParamSlice]] = {}
        for i, name in enumerate(self.modalities):
            out[name] = []
            for p in params:
                k = p.shape[0] // m
                out[name].append(ParamSlice(p, slice(i * k, (i + 1) * k)))
        return out

    def _masks(self, x: torch.Tensor, modality_mask: torch.Tensor):
        """-> (channel mask (B, C), encoder-level presence (B, M))."""
        modality_mask = modality_mask.to(x.dtype)
        chan = (modality_mask @ self.group_membership).clamp(max=1.0)  # (B, C)
        present = modality_mask if self.decompose else modality_mask.amax(1, keepdim=True)  # (B, M)
        return chan, present

    def _encode(self, x: torch.Tensor, chan_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, C, T) -> ``u`` (M, B, d)."""
        x = (x - self.in_mean[:, None]) / self.in_std[:, None]
        if chan_mask is not None:
            x = torch.where(chan_mask[:, :, None] > 0, x, torch.zeros_like(x))  # absent channels -> 0
        return self.encoders(x)

    def _represent(self, u: torch.Tensor):
        """u (M, B, d) -> (private (M, B, d), shared (M, B, d) or None)."""
        hp = torch.sigmoid(torch.baddbmm(self.b_private, u, self.w_private))
        hc = None if self.shared is None else self.shared(u)
        return hp, hc

    def _fuse(self, hp: torch.Tensor, hc: torch.Tensor | None, present: torch.Tensor | None) -> torch.Tensor:
        tokens = hp if hc is None else torch.cat([hp, hc], 0)  # (N, B, d)
        tokens = tokens.transpose(0, 1) + self.token_emb  # (B, N, d)
        key_mask = None
        if present is not None:  # (B, M): mask absent modalities' tokens
            valid = present if hc is None else torch.cat([present, present], 1)  # (B, N)
            # guarantee one valid token per row (token 0 when every modality is absent)
            none_valid = 1.0 - valid.amax(1, keepdim=True)  # (B, 1)
            valid = torch.cat([torch.maximum(valid[:, :1], none_valid), valid[:, 1:]], 1)
            tokens = torch.where(valid[:, :, None] > 0, tokens, torch.zeros_like(tokens))
            key_mask = (1.0 - valid) * NEG  # (B, N) additive
        if self.fusion is not None:
            tokens = self.fusion(tokens, key_mask)
        pooled = self.pool(self.fusion_ln(tokens), key_mask)  # (B, d)
        return self.classifier(pooled)  # (B, K)

    # -- forward passes ----------------------------------------------------------------
    def forward(self, x: torch.Tensor, modality_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, C, T), ``modality_mask`` (B, M_in) 1 present / 0 absent -> logits (B, K).

        ``modality_mask=None`` means every modality is present (same result as a mask
        of ones, with fewer ops).
        """
        chan, present = (None, None) if modality_mask is None else self._masks(x, modality_mask)
        hp, hc = self._represent(self._encode(x, chan))
        return self._fuse(hp, hc, present)

    def forward_train(
        self, x: torch.Tensor, modality_mask: torch.Tensor | None = None, modality_dropout: float = 0.0
    ) -> CMDHAROutput:
        """Logits, auxiliary logits and representation losses.

        ``modality_dropout`` (only used when ``modality_mask`` is None): each
        modality's fusion tokens are dropped with that probability per sample,
        never all of them. Dropout acts on fusion only - the encoders, aux heads and
        sim/diff/recon losses still see every modality.
        """
        if modality_mask is None:
            modality_mask = x.new_ones(x.shape[0], len(self.input_groups))
            chan = None
        else:
            chan = True
        chan_mask, present = self._masks(x, modality_mask)
        u = self._encode(x, chan_mask if chan is not None else None)  # (M, B, d)
        hp, hc = self._represent(u)
        hsum = hp if hc is None else hp + hc
        aux = torch.baddbmm(self.b_aux, hsum, self.w_aux)  # (M, B, K)

        fuse_mask = present
        m = u.shape[0]
        if chan is None and modality_dropout > 0 and m > 1 and self.training:
            keep = (torch.rand(x.shape[0], m, device=x.device) >= modality_dropout).to(x.dtype)
            pick = torch.randint(m, (x.shape[0], 1), device=x.device)
            rescue = (pick == torch.arange(m, device=x.device)).to(x.dtype)  # one-hot without F.one_hot's host check
            fuse_mask = torch.maximum(keep, rescue * (keep.sum(1, keepdim=True) == 0).to(x.dtype))
        logits = self._fuse(hp, hc, fuse_mask)

        zero = x.new_zeros(())
        sim, diff, recon = zero, zero, zero
        if hc is not None:
            if m > 1:
                sim = losses.cmd_pairs(hc, self.pair_i, self.pair_j, self.cmd_moments)
            # difference: (h_p^m, h_c^m) for every m, (h_p^i, h_p^j) for every i < j
            a = torch.cat([hp, hp[self.pair_i]], 0)
            b = torch.cat([hc, hp[self.pair_j]], 0)
            diff = losses.soft_orthogonality_pairs(a, b)
            recon = F.mse_loss(torch.baddbmm(self.b_decoder, hsum, self.w_decoder), u.detach())
        return CMDHAROutput(logits=logits, aux_logits=aux, sim=sim, diff=diff, recon=recon, modality_mask=fuse_mask)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
