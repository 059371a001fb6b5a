"""Representation losses of CMD-HAR (MISA-style disentanglement).

* :func:`cmd` - central moment discrepancy (Zellinger et al., ICLR 2017), the
  *similarity* loss pulling the shared representations of two modalities together.
* :func:`soft_orthogonality` - the *difference* loss (Bousmalis et al. 2016, as used
  by MISA, Hazarika et al. 2020) pushing private and shared subspaces apart.
* :func:`reconstruction` - MSE between a decoder's output and its target.

These take ``(batch, dim)`` tensors and return a scalar tensor. :func:`cmd_pairs` and
:func:`soft_orthogonality_pairs` compute the same values for many modality pairs at once
(``(M, batch, dim)`` stacks, one op set): what :class:`components.models.cmdhar.CMDHAR` trains with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-12


def _l2(d: torch.Tensor) -> torch.Tensor:
    """Euclidean norm with a tiny epsilon so the gradient is finite at 0."""
    return torch.sqrt((d * d).sum() + _EPS)


def cmd(x1: torch.Tensor, x2: torch.Tensor, n_moments: int = 5) -> torch.Tensor:
    """Central moment discrepancy between two samples ``(B1, D)`` and ``(B2, D)``.

    ``CMD_K = ||E[x1] - E[x2]||_2 + sum_{k=2..K} ||c_k(x1) - c_k(x2)||_2`` with
    ``c_k(x) = E[(x - E[x])^k]`` (element-wise, per dimension). Zellinger et al.
    divide the k-th term by ``|b - a|^k`` for features bounded in ``[a, b]``; the
    shared encoder ends in a sigmoid (``[0, 1]``), so that factor is 1 and dropped,
    as in MISA. ``_l2`` adds 1e-12 under the square root: identical inputs give
    ``K * 1e-6`` instead of exactly 0, but the gradient never becomes NaN.
    """
    m1, m2 = x1.mean(0), x2.mean(0)  # (D,)
    c1, c2 = x1 - m1, x2 - m2  # centred samples
    loss = _l2(m1 - m2)
    for k in range(2, n_moments + 1):
        loss = loss + _l2(c1.pow(k).mean(0) - c2.pow(k).mean(0))
    return loss


def soft_orthogonality(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Soft subspace-orthogonality loss ``mean((X1^T X2)^2)``.

    Both ``(B, D)`` inputs are centred over the batch and each row is L2-normalised
    first (MISA ``DiffLoss``; here the norm is *not* detached, so the loss is an
    exact function of the normalised rows). 0 when the two sets of (centred,
    normalised) features are orthogonal, large when they are identical.
    """
    x1 = x1.reshape(x1.shape[0], -1)
    x2 = x2.reshape(x2.shape[0], -1)
    x1 = x1 - x1.mean(0, keepdim=True)
    x2 = x2 - x2.mean(0, keepdim=True)
    x1 = x1 / (x1.norm(p=2, dim=1, keepdim=True) + 1e-6)
    x2 = x2 / (x2.norm(p=2, dim=1, keepdim=True) + 1e-6)
    return (x1.t() @ x2).pow(2).mean()  # (D1, D2) -> scalar


def reconstruction(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error (target used as given; callers detach it if wanted)."""
    return F.mse_loss(pred, target)


def cmd_pairs(h: torch.Tensor, i: torch.Tensor, j: torch.Tensor, n_moments: int) -> torch.Tensor:
    """Mean over pairs ``(i[p], j[p])`` of :func:`cmd` between ``h[i]`` and ``h[j]``.

    ``h`` is ``(M, B, D)``; the moments of every modality are computed once.
    """
    mean = h.mean(1)  # (M, D)
    c = h - mean[:, None]
    moments = [mean] + [c.pow(k).mean(1) for k in range(2, n_moments + 1)]
    mom = torch.stack(moments, 0)  # (K, M, D)
    d = mom[:, i] - mom[:, j]  # (K, P, D)
    return torch.sqrt((d * d).sum(-1) + 1e-12).sum(0).mean()


def soft_orthogonality_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over ``p`` of :func:`soft_orthogonality` between ``a[p]`` and ``b[p]`` (P, B, D)."""

    def norm(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(1, keepdim=True)
        return x / (x.norm(p=2, dim=-1, keepdim=True) + 1e-6)

    return torch.bmm(norm(a).transpose(1, 2), norm(b)).pow(2).mean()  # (P, D1, D2)
