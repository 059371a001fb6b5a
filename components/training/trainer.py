"""Training loop for CMD-HAR and the baselines.

``train_model(model, train, val, cfg)``: AdamW, cosine LR over epochs, class-frequency
weighted cross-entropy, early stopping on validation macro-F1 (best weights restored),
fixed seeds and a deterministic data order, tqdm progress, and a per-epoch history.

Models with ``forward_train`` (CMD-HAR) are trained with the full objective::

    L = CE(logits) + w_aux * mean_m CE(aux_m) + w_sim * sim + w_diff * diff + w_recon * recon

and, if ``cfg.modulation`` and ``model.use_modulation``, OGM-GE gradient modulation
of each modality's encoder after ``backward``. Other models get the plain CE.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from components.data.windows import WindowSet
from components.evaluation.metrics import classification_metrics
from components.training.modulation import ogm_ge


@dataclass
class TrainConfig:
    """Training hyper-parameters (all JSON-serialisable)."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 100
    batch_size: int = 64
    patience: int = 10  # epochs without val macro-F1 improvement before stopping
    seed: int = 0
    device: str = "auto"  # "auto" -> cuda if available else cpu
    # loss weights (CMD-HAR only)
    w_aux: float = 0.5
    w_sim: float = 1.0
    w_diff: float = 0.3
    w_recon: float = 1.0
    # OGM-GE gradient modulation (CMD-HAR only; also needs model.use_modulation)
    modulation: bool = True
    alpha: float = 0.5
    modulation_offset: bool = True  # k = 1 - tanh(alpha * relu(rho - 1)); False: official code
    ge_noise: bool = True
    modulation_start: int = 0  # first epoch (0-based) with modulation
    modulation_end: int | None = None  # last epoch (exclusive); None = until the end
    modality_dropout: float = 0.0  # per-sample, per-modality fusion-token dropout (never all)
    grad_clip: float | None = 5.0
    progress: bool = True
    num_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """Outcome of :func:`train_model` (the model itself is trained in place)."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_val_f1: float
    epochs_run: int
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse class frequency, normalised to mean 1 over the classes present (absent: 0)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    present = (counts > 0).sum()
    w = w / w.sum() * present
    return torch.tensor(w, dtype=torch.float32)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _supports_mask(model: nn.Module) -> bool:
    return hasattr(model, "forward_train")


# ---------------------------------------------------------------------------------
# inference
# ---------------------------------------------------------------------------------
@torch.no_grad()
def predict(
    model: nn.Module, x: np.ndarray, batch_size: int = 256, modality_mask: np.ndarray | None = None
) -> np.ndarray:
    """Class probabilities ``(N, K)`` float32 for windows ``x`` ``(N, C, T)`` (eval mode).

    ``modality_mask`` ``(N, M)`` (1 present / 0 absent) is passed to models that take
    one (CMD-HAR); other models raise ``ValueError`` if a mask is given.
    """
    if modality_mask is not None and not _supports_mask(model):
        raise ValueError(f"{type(model).__name__} does not accept a modality_mask")
    was_training = model.training
    model.eval()
    device = _model_device(model)
    out = []
    for s in range(0, len(x), batch_size):
        xb = torch.as_tensor(np.asarray(x[s : s + batch_size], dtype=np.float32), device=device)
        if modality_mask is not None:
            mb = torch.as_tensor(np.asarray(modality_mask[s : s + batch_size], dtype=np.float32), device=device)
            logits = model(xb, mb)
        else:
            logits = model(xb)
        out.append(logits.float().softmax(-1).cpu().numpy())
    model.train(was_training)
    n_classes = out[0].shape[1] if out else 0
    return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)


def evaluate(
    model: nn.Module, windows: WindowSet, batch_size: int = 256, modality_mask: np.ndarray | None = None
) -> dict[str, Any]:
    """:func:`~components.evaluation.metrics.classification_metrics` of ``model`` on ``windows``."""
    probs = predict(model, windows.x, batch_size, modality_mask)
    y_pred = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    return classification_metrics(windows.y, y_pred, windows.n_classes)


# ---------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------
def _use_modulation(model: nn.Module, cfg: TrainConfig, epoch: int) -> bool:
    if not (cfg.modulation and getattr(model, "use_modulation", False) and hasattr(model, "encoder_parameters")):
        return False
    end = cfg.modulation_end if cfg.modulation_end is not None else math.inf
    return cfg.modulation_start <= epoch < end


def train_model(model: nn.Module, train: WindowSet, val: WindowSet, cfg: TrainConfig | None = None) -> TrainResult:
    """Train ``model`` in place on ``train``, early-stop on ``val`` macro-F1.

    Returns a :class:`TrainResult`; the model ends with the best validation weights
    (in eval mode). ``history`` has one dict per epoch with keys ``epoch``, ``loss``,
    ``ce``, ``aux``, ``sim``, ``diff``, ``recon`` (batch means), ``val_macro_f1``,
    ``val_accuracy``, ``scores`` / ``coeffs`` (per-modality means, CMD-HAR with
    modulation) , ``lr`` and ``seconds``.
    """
    cfg = cfg or TrainConfig()
    t_start = time.time()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    _seed_everything(cfg.seed)
    device = _resolve_device(cfg.device)
    model.to(device)

    ds = TensorDataset(torch.as_tensor(train.x, dtype=torch.float32), torch.as_tensor(train.y, dtype=torch.long))
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, generator=gen, drop_last=len(ds) > cfg.batch_size)
    class_w = _class_weights(train.y, train.n_classes).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    multi = hasattr(model, "forward_train")

    history: list[dict[str, Any]] = []
    best_f1, best_epoch, best_state, stale = -1.0, -1, None, 0
    pbar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=cfg.epochs, desc=type(model).__name__, unit="ep", leave=False)
    try:
        for epoch in range(cfg.epochs):
            t0 = time.time()
            model.train()
            modulate = multi and _use_modulation(model, cfg, epoch)
            sums: dict[str, float] = {k: 0.0 for k in ("loss", "ce", "aux", "sim", "diff", "recon")}
            score_sums: dict[str, float] = {}
            coeff_sums: dict[str, float] = {}
            n_batches = 0
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                opt.zero_grad(set_to_none=True)
                if multi:
                    out = model.forward_train(xb, modality_dropout=cfg.modality_dropout)
                    ce = F.cross_entropy(out.logits, yb, weight=class_w)
                    m, b, k = out.aux_logits.shape
                    aux = F.cross_entropy(out.aux_logits.reshape(m * b, k), yb.repeat(m), weight=class_w)
                    terms = {"ce": ce, "aux": aux, "sim": out.sim, "diff": out.diff, "recon": out.recon}
                    loss = ce + cfg.w_aux * aux + cfg.w_sim * out.sim + cfg.w_diff * out.diff + cfg.w_recon * out.recon
                else:
                    ce = F.cross_entropy(model(xb), yb, weight=class_w)
                    terms, loss = {"ce": ce}, ce
                loss.backward()
                if modulate:
                    res = ogm_ge(
                        model.encoder_parameters(),
                        out.aux_logits,
                        yb,
                        alpha=cfg.alpha,
                        offset=cfg.modulation_offset,
                        noise=cfg.ge_noise,
                    )
                    for name in res.coeffs:
                        score_sums[name] = score_sums.get(name, 0.0) + res.scores[name] / len(yb)
                        coeff_sums[name] = coeff_sums.get(name, 0.0) + res.coeffs[name]
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sums["loss"] += float(loss.detach())
                for name, v in terms.items():
                    sums[name] += float(v.detach())
                n_batches += 1
            lr = opt.param_groups[0]["lr"]
            sched.step()

            val_metrics = evaluate(model, val, batch_size=256)
            val_f1, val_acc = val_metrics["macro_f1"], val_metrics["accuracy"]
            nb = max(n_batches, 1)
            rec: dict[str, Any] = {"epoch": epoch, **{k: v / nb for k, v in sums.items()}}
            rec.update(
                val_macro_f1=val_f1,
                val_accuracy=val_acc,
                scores={k: v / nb for k, v in score_sums.items()},  # mean true-class prob per modality
                coeffs={k: v / nb for k, v in coeff_sums.items()},
                lr=lr,
                seconds=time.time() - t0,
            )
            history.append(rec)

            if val_f1 > best_f1:
                best_f1, best_epoch, stale = val_f1, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            if pbar is not None:
                pbar.update(1)
                pbar.set_postfix(loss=f"{rec['loss']:.3f}", val_f1=f"{val_f1:.3f}", best=f"{best_f1:.3f}")
            if stale >= cfg.patience:
                break
    finally:
        if pbar is not None:
            pbar.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        history=history,
        best_epoch=best_epoch,
        best_val_f1=best_f1,
        epochs_run=len(history),
        seconds=time.time() - t_start,
        config=cfg.to_dict(),
    )
