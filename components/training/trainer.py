"""Training loop for CMD-HAR and the baselines.

``train_model(model, train, val, cfg)``: AdamW, a decaying learning rate (``lr_schedule``),
class-frequency weighted cross-entropy, early stopping on validation macro-F1 (best weights restored),
fixed seeds and a deterministic data order, tqdm progress, and a per-epoch history.

Training ends at whichever comes first: ``patience`` epochs without a better validation
macro-F1, the ``epochs`` cap, or (with ``time_budget_min``) the wall-clock budget;
:attr:`TrainResult.stopped_by` says which.

Learning-rate schedules (``lr_schedule``):
- ``cosine``: cosine decay over ``epochs``; with a budget, the first epoch's wall time fixes
  how many epochs fit (``planned_epochs``, at most ``epochs``) and the schedule spans those,
  so the LR reaches its floor when the budget ends. Early stopping can end a run long before
  the schedule does, with the LR still near its start.
- ``plateau``: the LR is multiplied by ``lr_decay_factor`` after every ``lr_decay_patience``
  epochs without a better validation macro-F1 (the rule early stopping counts by), so it
  decays within whatever length the run turns out to have: with patience 10, decay patience 3
  and factor 0.5, a run that stops has halved its LR three times.

With a budget, the first epoch's wall time fixes how many epochs fit (``planned_epochs``).
How many fit depends on the machine; the run itself is then the same as one with
``epochs = planned_epochs`` and no budget (recorded, so it can be reproduced exactly).

With ``checkpoint`` (:class:`~components.training.checkpoint.TrainingCheckpoint`) the state
after each epoch is saved, and a training that was stopped (killed, a machine restart, a
deadline) resumes after its last saved epoch, ending as if it had never stopped.

Models with ``forward_train`` (CMD-HAR) are trained with the full objective::

    L = CE(logits) + w_aux * mean_m CE(aux_m) + w_sim * sim + w_diff * diff + w_recon * recon

and, if ``cfg.modulation`` and ``model.use_modulation``, OGM-GE gradient modulation
of each modality's encoder after ``backward``. Other models get the plain CE.
"""

from __future__ import annotations

import copy
import math
import random
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.data.splitting import Standardizer
from components.data.window_set import WindowSet
from components.metrics import classification_metrics
from components.training.augment import SensorAugment
from components.training.checkpoint import TrainingCheckpoint, rng_states, set_rng_states, training_identity
from components.training.modulation import ogm_ge

# graph captures and reseeding happen one at a time when trainings share a process (threads)
_CAPTURE_LOCK = threading.Lock()
_clock = time.monotonic  # the clock of cfg.time_budget_min (tests replace it)
_Cosine = torch.optim.lr_scheduler.CosineAnnealingLR
LR_SCHEDULES = ("cosine", "plateau")
CLASS_WEIGHTINGS = ("inverse", "sqrt", "none")
# a budget run ends after its planned epochs; only epochs that turn much slower than the first
# (a machine that got busy) stop it earlier, at this multiple of the budget
OVERRUN = 1.25


@dataclass
class TrainConfig:
    """Training hyper-parameters (all JSON-serialisable). The defaults are ``configs/train.yaml``'s
    ``trainer:`` values (tests/unit/test_config_defaults.py keeps them equal); the benchmark protocol
    sets its own (:mod:`components.benchmark.protocol`)."""

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
    modality_dropout: float = 0.1  # per-sample, per-modality fusion-token dropout (never all)
    # training-window augmentation (components.training.augment; needs the split's standardiser)
    augment_rotation_deg: float = 60.0  # random rotation of each sensor unit, up to this angle
    augment_gain_std: float = 0.1  # random gain of each x/y/z triad: 1 + gain_std * N(0, 1)
    grad_clip: float | None = 5.0
    # cross-entropy class weights: "inverse" (1/count), "sqrt" (1/sqrt(count)) or "none"
    class_weighting: str = "inverse"
    # learning-rate schedule: "cosine" over the planned epochs, or "plateau": times
    # lr_decay_factor after lr_decay_patience epochs without a better validation macro-F1
    lr_schedule: str = "cosine"
    lr_decay_patience: int = 3
    lr_decay_factor: float = 0.5
    progress: bool = True
    num_threads: int | None = None
    cuda_graph: bool = True  # on CUDA: capture the training step once, replay it per batch
    deadline: float | None = None  # unix time: stop after the epoch that passes it (time budgets)
    # wall-clock budget of the epoch loop: the first epoch's time fixes how many epochs fit
    # (``epochs`` is then a cap) and the cosine schedule spans them; None: schedule over epochs
    time_budget_min: float | None = 4.5

    def __post_init__(self) -> None:
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(
                f"class_weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, got {self.class_weighting!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lr_schedule == "plateau" and not (self.lr_decay_patience >= 1 and 0 < self.lr_decay_factor < 1):
            raise ValueError(
                "lr_schedule plateau needs lr_decay_patience >= 1 and 0 < lr_decay_factor < 1, got "
                f"{self.lr_decay_patience!r} and {self.lr_decay_factor!r}"
            )
        budget = self.time_budget_min
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | float) or not math.isfinite(budget) or budget <= 0
        ):
            raise ValueError(
                f"time_budget_min must be a positive number of minutes or null (no budget), got {budget!r}"
            )

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
    cuda_graph: bool = False  # the steps ran as CUDA-graph replays
    cuda_graph_error: str | None = None  # why capture failed (the steps then ran eagerly)
    # what ended training: "patience", "epochs" (the cap), "time_budget" or "deadline"
    stopped_by: str = "epochs"
    planned_epochs: int = 0  # the epochs the run may take (with a budget: what fit); cosine spans them
    resumed_from_epoch: int | None = None  # epochs a checkpoint supplied (None: started afresh)


# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    with _CAPTURE_LOCK:  # never reseed the CUDA generator while another thread captures a graph
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _class_weights(y: np.ndarray, n_classes: int, how: str = "inverse") -> torch.Tensor:
    """Cross-entropy class weights from the training labels, normalised to mean 1 over the
    classes present (absent: 0): ``inverse`` 1/count, ``sqrt`` 1/sqrt(count), ``none`` 1."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    power = {"inverse": 1.0, "sqrt": 0.5, "none": 0.0}[how]
    w = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
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
    """:func:`~components.metrics.classification_metrics` of ``model`` on ``windows``."""
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


LOSS_TERMS = ("loss", "ce", "aux", "sim", "diff", "recon")


class _StepRunner:
    """One optimisation step on a batch of indices into device-resident training data.

    ``step(idx, modulate)`` returns device tensors only (``terms`` (6,), ``scores`` and
    ``coeffs`` (M,)) and never synchronises with the host, so the whole step can be
    captured in a CUDA graph and replayed: on a GPU these small models are bound by
    kernel-launch overhead, and one graph launch replaces ~1,000 kernel launches.
    With ``use_graph`` the step is run eagerly ``GRAPH_WARMUP`` times (lazy CUDA/cuBLAS
    initialisation, optimizer state), then captured once per ``modulate`` value.
    """

    GRAPH_WARMUP = 3

    def __init__(self, model, opt, cfg: TrainConfig, x, y, class_w, use_graph: bool, augment=None):
        self.model, self.opt, self.cfg = model, opt, cfg
        self.x, self.y, self.class_w = x, y, class_w
        self.augment = augment
        self.multi = hasattr(model, "forward_train")
        # modality -> its encoder parameter views, built once (they read .grad when used)
        self.encoder_params = model.encoder_parameters() if hasattr(model, "encoder_parameters") else {}
        self.n_mod = len(self.encoder_params)
        self.use_graph = use_graph
        self.graphs: dict[bool, tuple[Any, torch.Tensor, tuple[torch.Tensor, ...]]] = {}
        self.eager_steps = 0
        self.graph_error: str | None = None
        self.sync_free = x.device.type != "cpu"  # no host reads inside a step (graph capture)

    def _step(self, idx: torch.Tensor, modulate: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        model, cfg, class_w = self.model, self.cfg, self.class_w
        xb, yb = self.x[idx], self.y[idx]
        if self.augment is not None:
            xb = self.augment(xb)
        self.opt.zero_grad(set_to_none=True)
        scores = coeffs = xb.new_zeros(self.n_mod)
        if self.multi:
            out = model.forward_train(xb, modality_dropout=cfg.modality_dropout)
            ce = F.cross_entropy(out.logits, yb, weight=class_w)
            m, b, k = out.aux_logits.shape
            aux = F.cross_entropy(out.aux_logits.reshape(m * b, k), yb.repeat(m), weight=class_w)
            loss = ce + cfg.w_aux * aux + cfg.w_sim * out.sim + cfg.w_diff * out.diff + cfg.w_recon * out.recon
            terms = torch.stack([loss, ce, aux, out.sim, out.diff, out.recon])
        else:
            loss = ce = F.cross_entropy(model(xb), yb, weight=class_w)
            zero = ce.new_zeros(())
            terms = torch.stack([loss, ce, zero, zero, zero, zero])
        loss.backward()
        if modulate:
            res = ogm_ge(
                self.encoder_params,
                out.aux_logits,
                yb,
                alpha=cfg.alpha,
                offset=cfg.modulation_offset,
                noise=cfg.ge_noise,
                sync_free=self.sync_free,
            )
            scores, coeffs = res.score_tensor / len(yb), res.coeff_tensor
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.opt.step()
        return terms.detach(), scores.detach(), coeffs.detach()

    def _capture(self, idx: torch.Tensor, modulate: bool) -> None:
        static_idx = idx.clone()
        graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph, stream=torch.cuda.current_stream(), capture_error_mode="thread_local"):
            outputs = self._step(static_idx, modulate)
        self.graphs[modulate] = (graph, static_idx, outputs)

    def step(self, idx: torch.Tensor, modulate: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.x.device.type != "cuda":
            return self._step(idx, modulate)
        # While one thread captures, the CUDA generator is in capture mode and any other
        # thread's eager random op (dropout, GE noise) fails: trainings sharing the GPU
        # from threads take turns for captures, eager steps and (cheap) graph launches.
        with _CAPTURE_LOCK:
            if self.use_graph and self.eager_steps >= self.GRAPH_WARMUP and modulate not in self.graphs:
                try:
                    self._capture(idx, modulate)
                except Exception as exc:  # noqa: BLE001 - fall back to eager steps, said in the result
                    self.use_graph, self.graph_error = False, f"{type(exc).__name__}: {exc}"
            if self.use_graph and modulate in self.graphs:
                graph, static_idx, outputs = self.graphs[modulate]
                static_idx.copy_(idx)
                graph.replay()
                return outputs
            self.eager_steps += 1
            return self._step(idx, modulate)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, planned: int):
    """The LR schedule of ``cfg.lr_schedule`` (cosine spans ``planned`` epochs)."""
    if cfg.lr_schedule == "plateau":
        # "better" as early stopping counts it: strictly above the best so far
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="max",
            factor=cfg.lr_decay_factor,
            patience=cfg.lr_decay_patience - 1,
            threshold=0.0,
            threshold_mode="abs",
        )
    return _Cosine(opt, T_max=planned)


def _epoch_batches(n: int, batch_size: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    """A seeded permutation of ``range(n)`` cut into batches of indices on ``device``.

    The last partial batch is dropped when there is more than one batch (fixed shapes
    for graph replay; no size-1 BatchNorm batches). The permutation comes from a CPU
    generator, so the data order is the same on every device.
    """
    perm = torch.randperm(n, generator=gen).to(device)
    n_full = n // batch_size if n > batch_size else 1
    return [perm[i * batch_size : (i + 1) * batch_size] for i in range(n_full)]


def train_model(
    model: nn.Module,
    train: WindowSet,
    val: WindowSet,
    cfg: TrainConfig | None = None,
    standardizer: Standardizer | None = None,
    checkpoint: TrainingCheckpoint | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train``, early-stop on ``val`` macro-F1.

    ``standardizer`` is the one ``train``/``val`` were standardised with; augmentation
    (``cfg.augment_rotation_deg`` / ``cfg.augment_gain_std``) needs it to rotate the
    sensors in physical units. ``checkpoint``: save the state after each epoch there, and
    resume from it if it holds one (see :mod:`components.training.checkpoint`).

    Returns a :class:`TrainResult`; the model ends with the best validation weights
    (in eval mode). ``history`` has one dict per epoch with keys ``epoch``, ``loss``,
    ``ce``, ``aux``, ``sim``, ``diff``, ``recon`` (batch means), ``val_macro_f1``,
    ``val_accuracy``, ``scores`` / ``coeffs`` (per-modality means, CMD-HAR with
    modulation) , ``lr`` and ``seconds``. The training windows live on the training
    device; on CUDA with ``cfg.cuda_graph`` each step is a CUDA-graph replay.
    """
    cfg = cfg or TrainConfig()
    device = _resolve_device(cfg.device)
    augment = _augmentation(train, cfg, standardizer, device)
    if device.type != "cuda":
        return _train(model, train, val, cfg, device, augment, checkpoint)
    # a stream of its own: graph capture needs a non-default stream, and concurrent
    # trainings (benchmark tasks in threads) then overlap on the GPU
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        result = _train(model, train, val, cfg, device, augment, checkpoint)
    torch.cuda.current_stream(device).wait_stream(stream)
    return result


def _augmentation(
    train: WindowSet, cfg: TrainConfig, standardizer: Standardizer | None, device: torch.device
) -> SensorAugment | None:
    if not (cfg.augment_rotation_deg > 0 or cfg.augment_gain_std > 0):
        return None
    if standardizer is None:
        raise ValueError(
            "augmentation (augment_rotation_deg / augment_gain_std) rotates sensors in physical units: "
            "pass train_model the standardizer the windows were standardised with"
        )
    augment = SensorAugment(
        train.channel_names, standardizer.mean, standardizer.std, cfg.augment_rotation_deg, cfg.augment_gain_std, device
    )
    return augment if augment.active else None


def _train(
    model: nn.Module,
    train: WindowSet,
    val: WindowSet,
    cfg: TrainConfig,
    device: torch.device,
    augment: SensorAugment | None = None,
    checkpoint: TrainingCheckpoint | None = None,
) -> TrainResult:
    t_start = time.time()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    model.to(device)

    x = torch.as_tensor(train.x, dtype=torch.float32).to(device)
    y = torch.as_tensor(train.y, dtype=torch.long).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    class_w = _class_weights(train.y, train.n_classes, cfg.class_weighting).to(device)
    use_graph = bool(cfg.cuda_graph and device.type == "cuda")
    # a tensor learning rate lets the schedule change it without re-capturing the graph
    lr: float | torch.Tensor = torch.tensor(cfg.lr, device=device) if use_graph else cfg.lr
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=cfg.weight_decay, capturable=use_graph, foreach=device.type == "cuda"
    )
    budget_s = cfg.time_budget_min * 60.0 if cfg.time_budget_min is not None else None
    # with a budget a cosine schedule starts after the first epoch, once its time says how many
    # fit (epoch 0 runs at the base LR either way, so the run equals one over that many epochs)
    planned = max(cfg.epochs, 1)
    sched = _scheduler(opt, cfg, planned) if budget_s is None or cfg.lr_schedule == "plateau" else None
    multi = hasattr(model, "forward_train")
    runner = _StepRunner(model, opt, cfg, x, y, class_w, use_graph, augment)
    names = list(runner.encoder_params)

    history: list[dict[str, Any]] = []
    best_f1, best_epoch, best_state, stale = -1.0, -1, None, 0
    stopped_by = "epochs"
    first, elapsed, earlier_s = 0, 0.0, 0.0  # with a checkpoint: epochs, loop and total seconds before
    identity = training_identity(model, train, val, cfg.to_dict()) if checkpoint is not None else {}
    saved = checkpoint.load(identity) if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        if use_graph:  # the captured step reads the learning rate from a tensor on the device
            for group in opt.param_groups:
                group["lr"] = torch.tensor(float(group["lr"]), device=device)
        planned = saved["planned"]
        if saved["scheduler"] is not None:
            sched = _scheduler(opt, cfg, planned)
            sched.load_state_dict(saved["scheduler"])
        gen.set_state(saved["generator"])
        set_rng_states(saved["rng"], device)
        history, stale, elapsed, earlier_s = saved["history"], saved["stale"], saved["elapsed"], saved["seconds"]
        best_f1, best_epoch, best_state = saved["best_f1"], saved["best_epoch"], saved["best_state"]
        first = saved["epoch"] + 1
    pbar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        desc = type(model).__name__ + (f" (budget {cfg.time_budget_min:g} min)" if budget_s is not None else "")
        pbar = tqdm(total=planned if saved else cfg.epochs, initial=first, desc=desc, unit="ep", leave=False)
    t_loop = _clock() - elapsed
    try:
        for epoch in range(first, cfg.epochs):
            t0 = time.time()
            model.train()
            modulate = multi and _use_modulation(model, cfg, epoch)
            batches = _epoch_batches(len(x), cfg.batch_size, gen, device)
            sums = torch.zeros(len(LOSS_TERMS), device=device)
            score_sums = torch.zeros(len(names), device=device)
            coeff_sums = torch.zeros(len(names), device=device)
            for idx in batches:
                terms, scores, coeffs = runner.step(idx, modulate)
                sums += terms
                score_sums += scores
                coeff_sums += coeffs
            lr_now = float(opt.param_groups[0]["lr"])
            val_metrics = evaluate(model, val, batch_size=1024 if device.type == "cuda" else 256)
            val_f1, val_acc = val_metrics["macro_f1"], val_metrics["accuracy"]
            if isinstance(sched, _Cosine):
                sched.step()
            elif sched is not None:
                sched.step(val_f1)
            nb = max(len(batches), 1)
            rec: dict[str, Any] = {"epoch": epoch, **dict(zip(LOSS_TERMS, (sums / nb).tolist(), strict=True))}
            rec.update(
                val_macro_f1=val_f1,
                val_accuracy=val_acc,
                # mean true-class probability and modulation coefficient per modality
                scores=dict(zip(names, (score_sums / nb).tolist(), strict=True)) if modulate else {},
                coeffs=dict(zip(names, (coeff_sums / nb).tolist(), strict=True)) if modulate else {},
                lr=lr_now,
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
                stopped_by = "patience"
                break
            if budget_s is not None and epoch == 0:
                planned = max(1, min(cfg.epochs, int(budget_s // max(_clock() - t_loop, 1e-9))))
                if sched is None:  # cosine: spans the epochs that fit
                    sched = _Cosine(opt, T_max=planned)
                    with warnings.catch_warnings():  # the optimizer did step, before the scheduler existed
                        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                        sched.step()  # where a scheduler made before epoch 0 would be now
                if pbar is not None:
                    pbar.total = planned
                    pbar.refresh()
            stop = None
            if cfg.deadline is not None and time.time() > cfg.deadline and epoch + 1 < cfg.epochs:
                stop = "deadline"  # cut from outside: the checkpoint lets a later run go on
            elif epoch + 1 < cfg.epochs and (
                epoch + 1 >= planned or (budget_s is not None and _clock() - t_loop >= OVERRUN * budget_s)
            ):
                stop = "time_budget"
            if checkpoint is not None and stop in (None, "deadline") and epoch + 1 < cfg.epochs:
                state = {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "planned": planned,
                    "generator": gen.get_state(),
                    "rng": rng_states(device),
                    "history": history,
                    "stale": stale,
                    "elapsed": _clock() - t_loop,
                    "seconds": earlier_s + time.time() - t_start,
                    "best_f1": best_f1,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                }
                checkpoint.save(state, identity)
            if stop is not None:
                stopped_by = stop
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
        seconds=earlier_s + time.time() - t_start,  # a resumed training: with the runs before
        config=cfg.to_dict(),
        cuda_graph=bool(runner.graphs) and runner.use_graph,
        cuda_graph_error=runner.graph_error,
        stopped_by=stopped_by,
        planned_epochs=planned,
        resumed_from_epoch=first if saved is not None else None,
    )
