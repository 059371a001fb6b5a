"""CMD-HAR: cross-modal disentanglement for wearable human activity recognition.

A reconstruction of the architecture described in arXiv 2503.21843 (no public code):

1. *Modality decomposition* - the channels are split by ``spec.modality_groups`` and
   each group (modality) gets its own lightweight encoder: per-channel temporal
   convolutions (shared across the group's channels), depthwise-separable
   split-attention blocks (channel expansion + ResNeSt radix attention), then
   spatiotemporal attention (self-attention across the group's channels at every
   time step, attention pooling over channels and over time) -> ``u_m`` (d_model).
2. *Disentanglement* (MISA, Hazarika et al. 2020) - one shared encoder ``S`` for all
   modalities (``h_c = S(u_m)``) and one private encoder per modality
   (``h_p = P_m(u_m)``), trained with CMD similarity, soft-orthogonality difference
   and reconstruction losses (see :mod:`components.models.losses`).
3. *Fusion* - a 1-layer transformer encoder over the ``2M`` tokens
   ``[h_p^1..h_p^M, h_c^1..h_c^M]`` (+ modality and type embeddings), masked
   attention pooling, MLP classifier.
4. *Auxiliary heads* - one linear classifier per modality on ``h_p + h_c``, used for
   the multi-task loss and for OGM-GE gradient-modulation scores.

``forward(x, modality_mask=None) -> logits`` is what is exported and served;
``forward_train`` also returns the auxiliary logits and the representation losses.
Absent modalities (``modality_mask == 0``) are zeroed at the input, their tokens are
zeroed, and they are removed from every fusion attention with an additive ``-1e4``
mask (no Python control flow, so ONNX export keeps it).
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


# ---------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------
class SplitAttnBlock(nn.Module):
    """Depthwise-separable temporal conv with ResNeSt split (radix) attention.

    ``(N, ch, L) -> (N, ch, L)``: pointwise *channel expansion* ``ch -> radix*ch``,
    depthwise temporal conv on every expanded channel, then the ``radix`` splits are
    mixed with per-channel softmax weights computed from their pooled sum.
    """

    def __init__(self, ch: int, radix: int = 2, kernel: int = 5, reduction: int = 2):
        super().__init__()
        self.ch, self.radix = ch, radix
        hidden = max(ch // reduction, 4)
        self.expand = nn.Conv1d(ch, ch * radix, 1, bias=False)
        self.dw = nn.Conv1d(
            ch * radix, ch * radix, kernel, padding=kernel // 2, groups=ch * radix, bias=False
        )
        self.bn = nn.BatchNorm1d(ch * radix)
        self.fc1 = nn.Conv1d(ch, hidden, 1)
        self.fc2 = nn.Conv1d(hidden, ch * radix, 1)
        self.bn_out = nn.BatchNorm1d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, length = x.shape
        s = F.relu(self.bn(self.dw(self.expand(x))))  # (N, R*ch, L)
        splits = s.reshape(n, self.radix, self.ch, length)  # (N, R, ch, L)
        gap = splits.sum(1).mean(-1, keepdim=True)  # (N, ch, 1)
        att = self.fc2(F.relu(self.fc1(gap)))  # (N, R*ch, 1)
        att = att.reshape(n, self.radix, self.ch, 1).softmax(dim=1)  # softmax over radix
        out = (att * splits).sum(1)  # (N, ch, L)
        return F.relu(x + self.bn_out(out))


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
        # separate q/k/v (not one Linear + chunk): chunk exports as an opset-18
        # Split(num_outputs) that the down-conversion to opset 17 mishandles
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, N, D); key_mask: (B, N) additive (0 valid, NEG absent)
        b, n, d = x.shape
        h = self.ln(x)
        q, k, v = self.q(h), self.k(h), self.v(h)  # 3 x (B, N, D)
        q = q.reshape(b, n, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, N, hd)
        k = k.reshape(b, n, self.n_heads, self.head_dim).transpose(1, 2)
        v = v.reshape(b, n, self.n_heads, self.head_dim).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, N, N)
        if key_mask is not None:
            att = att + key_mask[:, None, None, :]
        y = att.softmax(dim=-1) @ v  # (B, H, N, hd)
        y = y.transpose(1, 2).reshape(b, n, d)
        return x + self.drop(self.proj(y))


class ModalityEncoder(nn.Module):
    """One modality's channels ``(B, C_m, T)`` -> ``u_m`` ``(B, d_model)``.

    Every channel goes through the same temporal conv stack (so parameters do not
    grow with the group size), a learned channel embedding tells channels apart,
    then spatiotemporal attention fuses channels and time.
    """

    def __init__(self, n_channels: int, d_model: int, n_filters: int, attention: bool, kernel: int = 5):
        super().__init__()
        f = n_filters
        self.stem = nn.Sequential(
            nn.Conv1d(1, f, kernel, stride=2, padding=kernel // 2, bias=False), nn.BatchNorm1d(f), nn.ReLU()
        )
        self.block1 = SplitAttnBlock(f, kernel=kernel)
        self.pool = nn.MaxPool1d(2, ceil_mode=True)
        self.block2 = SplitAttnBlock(f, kernel=kernel)
        self.chan_emb = nn.Parameter(torch.zeros(1, n_channels, f, 1))
        self.chan_attn = SelfAttention(f, n_heads=1) if attention else None
        self.chan_pool = AttnPool(f, enabled=attention)
        self.time_pool = AttnPool(f, enabled=attention)
        self.proj = nn.Sequential(nn.Linear(f, d_model), nn.LayerNorm(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        z = x.reshape(b * c, 1, t)  # every channel separately
        z = self.pool(self.stem(z))  # (B*C, F, T/4): downsample early, the blocks are the cost
        z = self.block2(self.pool(self.block1(z)))  # (B*C, F, L), L ~ T/8
        f, length = z.shape[1], z.shape[2]
        z = z.reshape(b, c, f, length) + self.chan_emb  # (B, C, F, L)
        z = z.permute(0, 3, 1, 2)  # (B, L, C, F)
        if self.chan_attn is not None:  # attention across the group's channels, per time step
            z = self.chan_attn(z.reshape(b * length, c, f)).reshape(b, length, c, f)
        z = self.chan_pool(z)  # (B, L, F)   pool over channels
        z = self.time_pool(z)  # (B, F)      pool over time
        return self.proj(z)  # (B, d_model)


class FusionLayer(nn.Module):
    """One pre-LN transformer encoder layer with an additive key mask."""

    def __init__(self, dim: int, n_heads: int, ff_mult: int = 2, dropout: float = 0.1):
        super().__init__()
        self.attn = SelfAttention(dim, n_heads, dropout)
        self.ln = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
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
        n_heads: heads of the fusion transformer.
        dropout: dropout in fusion and classifier.
        cmd_moments: K of the CMD loss.
        disentangle: False -> one private-style head per modality (no shared
            encoder, M tokens) and sim/diff/recon are zero.
        attention: False -> channel self-attention, attention pooling and the
            fusion transformer are replaced with (masked) mean pooling.
        decompose: False -> one encoder over all channels treated as one group
            ("all"); ``modality_mask`` still has one column per spec group and
            zeroes that group's channels.

    ``use_modulation`` (attribute, default True) is read by the trainer: set by the
    registry to False for the ``cmdhar-no-modulation`` ablation.
    """

    def __init__(
        self,
        spec: InputSpec,
        d_model: int = 32,
        n_filters: int = 16,
        n_heads: int = 4,
        dropout: float = 0.1,
        cmd_moments: int = 5,
        disentangle: bool = True,
        attention: bool = True,
        decompose: bool = True,
    ):
        super().__init__()
        self.spec = spec
        self.disentangle, self.attention, self.decompose = disentangle, attention, decompose
        self.cmd_moments = cmd_moments
        self.use_modulation = True

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
        for i, idx in enumerate(enc_groups.values()):
            self.register_buffer(f"idx_{i}", torch.tensor(idx, dtype=torch.long), persistent=False)

        # optional input standardisation (identity by default; set_normalization)
        self.register_buffer("in_mean", torch.zeros(spec.n_channels))
        self.register_buffer("in_std", torch.ones(spec.n_channels))

        self.encoders = nn.ModuleList(
            ModalityEncoder(len(idx), d_model, n_filters, attention) for idx in enc_groups.values()
        )
        self.private = nn.ModuleList(
            nn.Sequential(nn.Linear(d_model, d_model), nn.Sigmoid()) for _ in range(m)
        )
        if disentangle:
            self.shared = nn.Sequential(nn.Linear(d_model, d_model), nn.Sigmoid())
            self.decoders = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(m))
            n_tokens = 2 * m
        else:
            self.shared, self.decoders = None, None
            n_tokens = m
        self.n_tokens = n_tokens
        self.mod_emb = nn.Parameter(torch.zeros(m, d_model))
        self.type_emb = nn.Parameter(torch.zeros(2 if disentangle else 1, d_model))
        self.fusion = FusionLayer(d_model, n_heads, dropout=dropout) if attention else None
        self.fusion_ln = nn.LayerNorm(d_model)
        self.pool = AttnPool(d_model, enabled=attention)
        self.classifier = nn.Sequential(
            nn.Linear(d_model, d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, spec.n_classes)
        )
        self.aux_heads = nn.ModuleList(nn.Linear(d_model, spec.n_classes) for _ in range(m))
        nn.init.normal_(self.mod_emb, std=0.02)
        nn.init.normal_(self.type_emb, std=0.02)

    # -- helpers -----------------------------------------------------------------------
    def set_normalization(self, mean, std) -> None:
        """Store per-channel input mean/std (applied inside forward, so exported too)."""
        self.in_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).reshape(-1))
        self.in_std.copy_(torch.as_tensor(std, dtype=torch.float32).reshape(-1).clamp(min=1e-6))

    def encoder_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Modality name -> parameters that only that modality uses (encoder + private head)."""
        return {
            name: list(self.encoders[i].parameters()) + list(self.private[i].parameters())
            for i, name in enumerate(self.modalities)
        }

    def _masks(self, x: torch.Tensor, modality_mask: torch.Tensor | None):
        """-> (channel mask (B, C), encoder-level presence (B, M))."""
        if modality_mask is None:
            modality_mask = x.new_ones(x.shape[0], len(self.input_groups))
        modality_mask = modality_mask.to(x.dtype)
        chan = (modality_mask @ self.group_membership).clamp(max=1.0)  # (B, C)
        present = modality_mask if self.decompose else modality_mask.amax(1, keepdim=True)  # (B, M)
        return chan, present

    def _encode(self, x: torch.Tensor, chan_mask: torch.Tensor):
        """(B, C, T) -> list of M ``u_m`` (B, d)."""
        x = (x - self.in_mean[:, None]) / self.in_std[:, None]
        x = torch.where(chan_mask[:, :, None] > 0, x, torch.zeros_like(x))  # absent channels -> 0
        return [enc(x.index_select(1, getattr(self, f"idx_{i}"))) for i, enc in enumerate(self.encoders)]

    def _represent(self, us: list[torch.Tensor]):
        """u_m -> (private list, shared list or None, fused per-modality reps list)."""
        hp = [p(u) for p, u in zip(self.private, us, strict=True)]
        if self.shared is None:
            return hp, None, hp
        hc = [self.shared(u) for u in us]
        return hp, hc, [a + b for a, b in zip(hp, hc, strict=True)]

    def _fuse(self, hp, hc, present: torch.Tensor) -> torch.Tensor:
        tokens = torch.stack(hp, 1) + self.mod_emb + self.type_emb[0]  # (B, M, d)
        valid = present  # (B, M)
        if hc is not None:
            shared_tok = torch.stack(hc, 1) + self.mod_emb + self.type_emb[1]
            tokens = torch.cat([tokens, shared_tok], 1)  # (B, 2M, d)
            valid = torch.cat([present, present], 1)  # (B, 2M)
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
        """``x`` (B, C, T), ``modality_mask`` (B, M_in) 1 present / 0 absent -> logits (B, K)."""
        chan, present = self._masks(x, modality_mask)
        hp, hc, _ = self._represent(self._encode(x, chan))
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
        chan, present = self._masks(x, modality_mask)
        us = self._encode(x, chan)
        hp, hc, hsum = self._represent(us)
        aux = torch.stack([head(h) for head, h in zip(self.aux_heads, hsum, strict=True)], 0)  # (M, B, K)

        fuse_mask = present
        m = len(us)
        if modality_mask is None and modality_dropout > 0 and m > 1 and self.training:
            keep = (torch.rand(x.shape[0], m, device=x.device) >= modality_dropout).to(x.dtype)
            rescue = F.one_hot(torch.randint(m, (x.shape[0],), device=x.device), m).to(x.dtype)
            fuse_mask = torch.maximum(keep, rescue * (keep.sum(1, keepdim=True) == 0).to(x.dtype))
        logits = self._fuse(hp, hc, fuse_mask)

        zero = x.new_zeros(())
        sim, diff, recon = zero, zero, zero
        if hc is not None:
            pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
            if pairs:
                sim = sum(losses.cmd(hc[i], hc[j], self.cmd_moments) for i, j in pairs) / len(pairs)
            diff_terms = [losses.soft_orthogonality(hp[i], hc[i]) for i in range(m)]
            diff_terms += [losses.soft_orthogonality(hp[i], hp[j]) for i, j in pairs]
            diff = sum(diff_terms) / len(diff_terms)
            recon = (
                sum(
                    losses.reconstruction(dec(h), u.detach())
                    for dec, h, u in zip(self.decoders, hsum, us, strict=True)
                )
                / m
            )
        return CMDHAROutput(
            logits=logits, aux_logits=aux, sim=sim, diff=diff, recon=recon, modality_mask=fuse_mask
        )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
