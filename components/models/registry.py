"""Model registry: build any model by name, save/load without pickling modules.

``build_model(name, spec, **hparams)`` returns an ``nn.Module`` whose ``forward(x)``
gives logits. The CMD-HAR ablations map to constructor switches::

    cmdhar                   CMDHAR(spec)                     use_modulation = False
    cmdhar-no-disentangle    CMDHAR(spec, disentangle=False)  use_modulation = False
    cmdhar-no-attention      CMDHAR(spec, attention=False)    use_modulation = False
    cmdhar-no-decomposition  CMDHAR(spec, decompose=False)    use_modulation = False
    cmdhar-no-temporal       CMDHAR(spec, temporal=False)     use_modulation = False
    cmdhar-with-modulation   CMDHAR(spec)                     use_modulation = True

``use_modulation`` is a model attribute the trainer reads (OGM-GE gradient modulation is
a training-time switch; the architecture of ``cmdhar-with-modulation`` equals ``cmdhar``).
CMD-HAR trains without it by default: it lost on DSADS validation subjects and tied on
USC-HAD's (``benchmarks/augment_selection.py``, docs/model_card.md "Ablations"), so
``cmdhar-with-modulation`` is the comparison run.
Baselines are imported lazily so a missing module only fails when it is built.

``save_model`` writes ``<dir>/weights.pt`` (``torch.save`` of the state dict - tensors
only) and ``<dir>/config.json`` (``{name, spec, hparams}``); ``load_model`` rebuilds
the model from the JSON and loads the weights with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from components.io_utils import atomic_write_bytes, atomic_write_text
from components.models.spec import InputSpec

# name -> (module, class, fixed constructor switches, use_modulation)
_REGISTRY: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "cmdhar": ("components.models.cmdhar", "CMDHAR", {}, False),
    "cmdhar-no-disentangle": ("components.models.cmdhar", "CMDHAR", {"disentangle": False}, False),
    "cmdhar-no-attention": ("components.models.cmdhar", "CMDHAR", {"attention": False}, False),
    "cmdhar-no-decomposition": ("components.models.cmdhar", "CMDHAR", {"decompose": False}, False),
    "cmdhar-no-temporal": ("components.models.cmdhar", "CMDHAR", {"temporal": False}, False),
    "cmdhar-with-modulation": ("components.models.cmdhar", "CMDHAR", {}, True),
    "tinyhar": ("components.models.tinyhar", "TinyHAR", {}, False),
    "deepconvlstm": ("components.models.deepconvlstm", "DeepConvLSTM", {}, False),
    "cnn": ("components.models.cnn", "CNN", {}, False),
}

MODEL_NAMES: list[str] = list(_REGISTRY)

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"


def build_model(name: str, spec: InputSpec, **hparams: Any) -> nn.Module:
    """Instantiate model ``name`` for ``spec``.

    ``hparams`` are passed to the constructor (the ablation switches of a
    ``cmdhar-no-*`` name take precedence). The returned module carries
    ``registry_config = {"name", "spec", "hparams"}`` (used by :func:`save_model`)
    and ``use_modulation`` (bool, read by the trainer).
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    module_name, cls_name, switches, use_modulation = _REGISTRY[name]
    cls = getattr(importlib.import_module(module_name), cls_name)
    model = cls(spec, **{**hparams, **switches})
    model.use_modulation = use_modulation
    model.registry_config = {"name": name, "spec": spec.to_dict(), "hparams": dict(hparams)}
    return model


def save_model(
    model: nn.Module,
    directory: str | Path,
    name: str | None = None,
    spec: InputSpec | None = None,
    hparams: dict[str, Any] | None = None,
) -> Path:
    """Write ``weights.pt`` + ``config.json`` to ``directory``; returns the directory.

    ``name``/``spec``/``hparams`` default to ``model.registry_config`` (set by
    :func:`build_model`); hparams must be JSON-serialisable.
    """
    directory = Path(directory)
    cfg = dict(getattr(model, "registry_config", {}) or {})
    if name is not None:
        cfg["name"] = name
    if spec is not None:
        cfg["spec"] = spec.to_dict()
    if hparams is not None:
        cfg["hparams"] = dict(hparams)
    missing = [k for k in ("name", "spec") if k not in cfg]
    if missing:
        raise ValueError(f"save_model needs {missing} (build the model with build_model or pass them)")
    cfg.setdefault("hparams", {})
    buf = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, buf)
    atomic_write_bytes(directory / WEIGHTS_FILE, buf.getvalue())
    atomic_write_text(directory / CONFIG_FILE, json.dumps(cfg, indent=2, sort_keys=True))
    return directory


def load_model(directory: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_model`, in eval mode."""
    directory = Path(directory)
    cfg = json.loads((directory / CONFIG_FILE).read_text())
    model = build_model(cfg["name"], InputSpec.from_dict(cfg["spec"]), **cfg.get("hparams", {}))
    state = torch.load(directory / WEIGHTS_FILE, map_location=map_location, weights_only=True)
    model.load_state_dict(state)
    return model.to(map_location).eval()
