"""OGM-GE gradient modulation (Peng et al., CVPR 2022), generalised to M >= 2 modalities.

After ``loss.backward()``:

* score   ``s_m = sum_batch softmax(aux_logits_m)[y]``   (confidence of modality m's head)
* ratio   ``rho_m = s_m / mean_{j != m} s_j``
* coeff   ``k_m = max(1 - tanh(alpha * relu(rho_m - 1)), 1e-3)``  if ``rho_m > 1`` else ``1``
  (``offset=False`` gives the official-code form ``1 - tanh(alpha * rho_m)``)
* every parameter used only by modality m: ``grad <- grad * k_m + N(0, std(grad))``,
  the Gaussian "generalisation enhancement" noise being added only where ``k_m < 1``
  (``noise=False`` turns it off).

"Parameters" are whatever ``model.encoder_parameters()`` returns: anything with a
``.grad`` tensor that can be scaled in place - ``nn.Parameter`` objects, or (CMD-HAR,
whose modality encoders are batched into shared tensors) ``ParamSlice`` views of one
modality's rows, so a modality's gradient is modulated without touching the others'.

See docs/model_card.md for why the ``- 1`` offset is the default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class ModulationResult:
    """Per-modality values of one modulation step.

    The ``*_tensor`` fields stay on the training device (the step never waits for the
    GPU); ``scores`` / ``ratios`` / ``coeffs`` are the same values as ``{name: float}``
    dicts, for logging and tests (reading them synchronises).
    """

    names: list[str]
    score_tensor: torch.Tensor  # (M,)
    ratio_tensor: torch.Tensor  # (M,)
    coeff_tensor: torch.Tensor  # (M,)

    def _as_dict(self, t: torch.Tensor) -> dict[str, float]:
        return dict(zip(self.names, t.tolist(), strict=True))

    @property
    def scores(self) -> dict[str, float]:
        return self._as_dict(self.score_tensor)

    @property
    def ratios(self) -> dict[str, float]:
        return self._as_dict(self.ratio_tensor)

    @property
    def coeffs(self) -> dict[str, float]:
        return self._as_dict(self.coeff_tensor)


def modality_scores(aux_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(M, B, K)`` logits, ``(B,)`` labels -> ``(M,)`` summed true-class probabilities."""
    probs = aux_logits.detach().float().softmax(-1)  # (M, B, K)
    idx = y.view(1, -1, 1).expand(probs.shape[0], -1, 1)
    return probs.gather(-1, idx).squeeze(-1).sum(1)  # (M,)


def modulation_ratios(scores: torch.Tensor) -> torch.Tensor:
    """``rho_m = s_m / mean_{j != m} s_j``; all ones when M < 2."""
    m = scores.shape[0]
    if m < 2:
        return torch.ones_like(scores)
    others = (scores.sum() - scores) / (m - 1)
    return scores / others.clamp(min=1e-8)


def modulation_coefficients(
    ratios: torch.Tensor, alpha: float = 0.5, offset: bool = True, min_coeff: float = 1e-3
) -> torch.Tensor:
    """``k_m`` in (0, 1]: 1 unless modality m dominates (``rho_m > 1``).

    ``min_coeff`` floors the damped value: in float32 ``tanh`` saturates to exactly 1
    for large ratios, which would otherwise freeze a modality's encoder (k = 0).
    """
    excess = torch.relu(ratios - 1.0) if offset else torch.relu(ratios)
    damped = (1.0 - torch.tanh(alpha * excess)).clamp(min=min_coeff)
    return torch.where(ratios > 1.0, damped, torch.ones_like(ratios))


@torch.no_grad()
def apply_modulation(
    params: dict[str, list[nn.Parameter]], coeffs: torch.Tensor, noise: bool = True, sync_free: bool | None = None
) -> None:
    """Scale the gradients of each modality's parameters (any shape) by ``coeffs[m]``.

    ``params`` values are parameters or parameter views (``.grad`` scaled in place);
    ``coeffs`` is ``(M,)`` in the key order of ``params``. With ``noise``, where
    ``k_m < 1``, add ``N(0, std(grad))`` per tensor (GE). Uses the global torch RNG,
    so it is reproducible under a fixed seed.

    On the CPU an undamped modality (``k_m = 1``) is skipped. With ``sync_free``
    (default: on any device but the CPU) the branch is replaced by arithmetic (scale by
    ``k_m``, noise times ``[k_m < 1]``), so the step never reads a value back to the
    host and can be captured in a CUDA graph.
    """
    if sync_free is None:
        sync_free = coeffs.device.type != "cpu"
    host_coeffs = None if sync_free else coeffs.tolist()
    for i, plist in enumerate(params.values()):
        if host_coeffs is not None and host_coeffs[i] >= 1.0:
            continue
        k = coeffs[i]
        damped = (k < 1.0).to(coeffs.dtype)
        for p in plist:
            if p.grad is None:
                continue
            g = p.grad
            std = g.std() if g.numel() > 1 else g.new_zeros(())
            g.mul_(k)
            if noise:
                g.add_(torch.randn_like(g) * ((std + 1e-8) * damped))


def ogm_ge(
    params: dict[str, list[nn.Parameter]],
    aux_logits: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 0.5,
    offset: bool = True,
    noise: bool = True,
    sync_free: bool | None = None,
) -> ModulationResult:
    """Compute scores/ratios/coefficients from ``aux_logits`` (M, B, K) and apply them.

    ``params`` is ``model.encoder_parameters()``; its key order must match the
    first axis of ``aux_logits``. ``sync_free``: see :func:`apply_modulation`.
    """
    scores = modality_scores(aux_logits, y)
    ratios = modulation_ratios(scores)
    coeffs = modulation_coefficients(ratios, alpha, offset)
    apply_modulation(params, coeffs, noise=noise, sync_free=sync_free)
    return ModulationResult(names=list(params), score_tensor=scores, ratio_tensor=ratios, coeff_tensor=coeffs)
