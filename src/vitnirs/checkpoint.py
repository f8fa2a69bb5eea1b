"""The checkpoint format, in one place: file names, ``format_version``, finding, reading, loading
and the one atomic writer (pretraining, export and fine-tuning all write through it).

A checkpoint is a directory::

    model.safetensors   the model's state_dict (tensors only; float32, or bfloat16 when exported)
    config.json         format_version, step, the model spec (builder, preset, kwargs) that rebuilds
                        the model, the normalisation constants (point cap, metadata vocabulary, the
                        datasets seen) and the resolved pretraining config; "portable" and "dtype"
                        when exported; "finetuned" when written by ``vitnirs finetune``
    trainer.pt          (pretraining only) optimizer, scaler, step, RNG: :mod:`vitnirs.train.checkpoint`
    model_card.md       (exported only) :mod:`vitnirs.workflows.model_card`
    head.safetensors    (fine-tuned only) the regression head beside the encoder

A run directory keeps its checkpoints as ``RUN_DIR/checkpoints/step_NNNNNNN/``. Every checkpoint
is written under a temporary name next to its final place and renamed into place
(:func:`write_checkpoint`), so a reader sees a complete checkpoint or none.

>>> model, info = load_model("runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from vitnirs.errors import VitnirsError
from vitnirs.files import replace_dir

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "HEAD_FILE",
    "MODEL_FILE",
    "TRAINER_FILE",
    "CheckpointInfo",
    "checkpoint_dir",
    "complete_checkpoints",
    "find_checkpoint",
    "latest_checkpoint",
    "load_model",
    "load_state",
    "model_spec_from_config",
    "read_meta",
    "untrained_model",
    "unwrap",
    "upgrade_meta",
    "upgrade_state",
    "weights_sha256",
    "write_checkpoint",
]

FORMAT_VERSION = 1
MODEL_FILE, CONFIG_FILE, TRAINER_FILE = "model.safetensors", "config.json", "trainer.pt"
CARD_FILE, HEAD_FILE = "model_card.md", "head.safetensors"
BUILDER = "vitnirs.model.build_mae"  # the one builder a checkpoint may name
STEP_PREFIX = "step_"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about how to feed its model (read from ``config.json``).

    ``max_points`` is the pretraining cap on points per spectrum; ``meta_vocab`` maps each
    metadata field to its values (id = position + 1, 0 = unknown); ``finetuned`` is the
    fine-tuning record (targets, their scaling, the head file) or ``None``.
    """

    checkpoint: str
    step: int = 0
    preset: str | None = None
    max_points: int | None = None
    meta_vocab: dict[str, list[str]] = field(default_factory=dict)
    normalization: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    portable: bool = False
    finetuned: dict[str, Any] | None = None
    readout: str = "mean"  # how embeddings are read out of the latents (vitnirs.model.mae.readout);
    # from_meta: the checkpoint's recommended one (recommended_readout)

    @classmethod
    def from_meta(cls, path: str | Path, meta: Mapping[str, Any]) -> CheckpointInfo:
        norm = dict(meta.get("normalization") or {})
        return cls(
            checkpoint=str(path),
            step=int(meta.get("step", 0)),
            preset=(meta.get("model") or {}).get("preset"),
            max_points=norm.get("max_points"),
            meta_vocab=dict(norm.get("meta_vocab") or {}),
            normalization=norm,
            config=dict(meta.get("config") or {}),
            portable=bool(meta.get("portable", False)),
            finetuned=meta.get("finetuned"),
            readout=recommended_readout(meta),
        )


def recommended_readout(meta: Mapping[str, Any]) -> str:
    """The readout a checkpoint is meant to be used with: its config's ``evaluation.readout``
    (what ``vitnirs export --readout`` records), else ``"mean"`` (checkpoints before it existed)."""
    evaluation = (meta.get("config") or {}).get("evaluation") or {}
    return str(evaluation.get("readout") or "mean")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DDP (``.module``) and/or ``torch.compile`` (``._orig_mod``)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def model_spec_from_config(config_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The (builder, preset, kwargs) that rebuild the model: the config's ``model`` section as built."""
    section = dict(config_dict.get("model", {}))
    preset = section.pop("preset", "base")
    return {"builder": BUILDER, "preset": preset, "kwargs": section}


# ----------------------------------------------------------------------------- finding
def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    """``RUN_DIR/checkpoints/step_NNNNNNN``."""
    return Path(run_dir) / "checkpoints" / f"{STEP_PREFIX}{step:07d}"


def complete_checkpoints(run_dir: str | Path, *, needs: tuple[str, ...] = (TRAINER_FILE,)) -> list[Path]:
    """A run's complete checkpoints (model, config and ``needs``), oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir()
        and p.name.startswith(STEP_PREFIX)
        and p.name[len(STEP_PREFIX) :].isdigit()
        and all((p / f).is_file() for f in (MODEL_FILE, CONFIG_FILE, *needs))
    ]
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX) :]))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or ``None``."""
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def find_checkpoint(path: str | Path) -> Path:
    """``"default"`` or ``"robust"`` (the shipped models), a checkpoint directory, or a run
    directory's newest complete checkpoint. :class:`~vitnirs.errors.VitnirsError` naming the path
    when it is none."""
    from vitnirs import pretrained  # path constants only: read at call time (tests move them)

    if isinstance(path, str) and path in pretrained.SHIPPED:
        shipped = pretrained.shipped_dir(path)
        missing = [f for f in (MODEL_FILE, CONFIG_FILE) if not (shipped / f).is_file()]
        if missing:
            raise VitnirsError(
                f"the shipped {path} model is missing ({', '.join(missing)} not in {shipped}); "
                "reinstall vitnirs (pip install .) or pass the path of a checkpoint directory"
            )
        return shipped
    if not isinstance(path, (str, Path)):
        raise VitnirsError(f"checkpoint must be 'default' or a path; got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise VitnirsError(f"{path}: no such checkpoint or run directory")
    if (path / MODEL_FILE).is_file() or (path / CONFIG_FILE).is_file():
        read_meta(path)  # a half checkpoint is named as such, not searched for step_* folders
        return path
    found = latest_checkpoint(path)
    if found is None:
        raise VitnirsError(
            f"{path}: neither a checkpoint directory ({MODEL_FILE} + {CONFIG_FILE}) "
            "nor a run directory with complete checkpoints under checkpoints/"
        )
    return found


# ----------------------------------------------------------------------------- reading
def read_meta(ckpt_dir: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint directory, checked: a clear error for a missing directory
    or file, unreadable JSON, another ``format_version`` or an unknown builder."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise VitnirsError(f"{ckpt_dir}: no such checkpoint directory")
    missing = [f for f in (MODEL_FILE, CONFIG_FILE) if not (ckpt_dir / f).is_file()]
    if missing:
        raise VitnirsError(f"{ckpt_dir}: not a vitnirs checkpoint (missing {', '.join(missing)})")
    try:
        meta = json.loads((ckpt_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise VitnirsError(f"{ckpt_dir / CONFIG_FILE}: unreadable ({exc})") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION:
        raise VitnirsError(
            f"{ckpt_dir}: checkpoint format_version {version!r} is not supported "
            f"(this vitnirs reads format_version {FORMAT_VERSION})"
        )
    builder = (meta.get("model") or {}).get("builder", BUILDER)
    if builder != BUILDER:
        raise VitnirsError(f"{ckpt_dir}: the model is built by {builder!r}; this vitnirs builds {BUILDER!r}")
    return upgrade_meta(meta, ckpt_dir)


def weights_sha256(checkpoint_dir: str | Path) -> str:
    """The sha256 (64 hex digits) of a checkpoint directory's ``model.safetensors`` bytes.

    The identity of the weights a result was measured on: ``vitnirs evaluate``'s ``metrics.json``,
    ``benchmarks/downstream.py``'s JSON, ``pretrain_summary.json`` and ``finetune.json`` record it,
    and ``vitnirs export`` puts a downstream file in the model card only when it matches. A float32
    export of a checkpoint has the same bytes (same hash); a bfloat16 one does not.
    """
    path = Path(checkpoint_dir) / MODEL_FILE
    if not path.is_file():
        raise VitnirsError(f"{Path(checkpoint_dir)}: not a vitnirs checkpoint (missing {MODEL_FILE})")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state(ckpt_dir: str | Path, file: str = MODEL_FILE, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A checkpoint's tensors (``model.safetensors`` or another file of it), floats as float32."""
    state = upgrade_state(load_file(str(Path(ckpt_dir) / file), device=str(device)))
    # an exported checkpoint may store bfloat16 weights: compute in float32
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_model(
    checkpoint: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    builder: Callable[..., torch.nn.Module] | None = None,
) -> tuple[torch.nn.Module, CheckpointInfo]:
    """Rebuild the model of a checkpoint (see :func:`find_checkpoint`) and load its weights.

    Returns ``(model, info)``. ``builder`` replaces ``vitnirs.model.build_mae`` (tests use a
    stand-in model).
    """
    path = find_checkpoint(checkpoint)
    meta = read_meta(path)
    spec = meta["model"]
    if builder is None:
        from vitnirs.model import build_mae as builder
    model = builder(spec["preset"], **spec.get("kwargs", {}))
    model.load_state_dict(load_state(path, device=str(map_location)), strict=True)
    return model.to(map_location), CheckpointInfo.from_meta(path, meta)


def untrained_model(info: CheckpointInfo, seed: int) -> torch.nn.Module:
    """The checkpoint's architecture with fresh, never-trained weights (``torch.manual_seed(seed)``
    then the builder): the control every pretrained encoder is scored against. Eval mode."""
    from vitnirs.model import build_mae

    spec = read_meta(info.checkpoint)["model"]
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build_mae(spec["preset"], **spec.get("kwargs", {}))
    finally:
        torch.random.set_rng_state(state)  # the caller's random stream is left as it was
    return model.eval()


# ----------------------------------------------------------------------------- older checkpoints
# The one compatibility step (issue 21): checkpoints written before the model became tokenizer x
# trunk name ``model.tokens`` ("patch") and carry the Perceiver's n_latents / n_cross_layers, which
# their model never read, and keep the transformer's weights at ``encoder.blocks`` / ``encoder.norm``
# (now ``encoder.trunk.*``). Point-token checkpoints (``tokens`` "point" or absent) cannot be read:
# that encoder was retired.
_RETIRED_KEYS = ("tokens", "n_latents", "n_cross_layers")
_OLD_PRESETS = {  # the presets' sizes when those checkpoints were written (decoder keys included)
    "tiny": {"d_model": 32, "n_heads": 2, "n_self_layers": 1, "d_meta": 8,
             "decoder_d_model": 32, "decoder_n_heads": 2, "decoder_n_layers": 1},
    "small": {"d_model": 64, "n_heads": 4, "n_self_layers": 2, "d_meta": 16,
              "decoder_d_model": 64, "decoder_n_heads": 4, "decoder_n_layers": 1},
    "base": {"d_model": 128, "n_heads": 4, "n_self_layers": 3, "d_meta": 32,
             "decoder_d_model": 128, "decoder_n_heads": 4, "decoder_n_layers": 1},
    "large": {"d_model": 256, "n_heads": 8, "n_self_layers": 6, "d_meta": 32,
              "decoder_d_model": 128, "decoder_n_heads": 4, "decoder_n_layers": 2},
}  # fmt: skip
_TRUNK_PREFIXES = ("encoder.blocks.", "encoder.norm.")


def upgrade_meta(meta: Mapping[str, Any], where: str | Path = "checkpoint") -> dict[str, Any]:
    """``config.json`` of a checkpoint in today's terms (unchanged when it already is).

    A patch-token checkpoint from before the tokenizer x trunk split gets ``tokenizer: patch``,
    ``trunk: transformer`` and its old preset's sizes written out, and loses the keys its model
    never read; so does the pretraining config it carries. A point-token checkpoint is a
    :class:`~vitnirs.errors.VitnirsError`.
    """
    meta = json.loads(json.dumps(meta))  # a deep copy: the caller's dict is left as it was
    spec = meta.get("model") or {}
    kwargs = spec.get("kwargs") or {}
    old_format = "tokens" in kwargs or ("n_latents" in kwargs and "trunk" not in kwargs)
    if not old_format:  # today's (the config always wrote n_latents, and tokens once it existed)
        return meta
    if kwargs.get("tokens", "point") != "patch":
        raise VitnirsError(
            f"{where}: a point-token checkpoint (one token per wavelength into a Perceiver). Point tokens "
            "were retired (issue 21); this vitnirs reads patch-token checkpoints only. vitnirs at commit "
            "6f84626 still reads it."
        )
    old = _OLD_PRESETS.get(spec.get("preset") or "base", {})
    kwargs = {**old, **{k: v for k, v in kwargs.items() if k not in _RETIRED_KEYS}}
    spec["kwargs"] = {**kwargs, "tokenizer": "patch", "trunk": "transformer"}
    section = (meta.get("config") or {}).get("model")
    if isinstance(section, dict):
        for key in _RETIRED_KEYS:
            section.pop(key, None)
        section.update(
            tokenizer="patch", trunk="transformer", **{k: v for k, v in kwargs.items() if k in section}
        )
    masking = (meta.get("config") or {}).get("masking")
    if isinstance(masking, dict):
        masking.pop("max_decoder_points", None)  # retired with point tokens
    evaluation = (meta.get("config") or {}).get("evaluation")
    if isinstance(evaluation, dict) and evaluation.get("readout") == "flat":
        evaluation["readout"] = "mean"  # retired with point tokens
    return meta


def upgrade_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict with the transformer trunk at ``encoder.trunk.*`` (older ones: ``encoder.blocks``)."""
    if not any(k.startswith(_TRUNK_PREFIXES) for k in state):
        return state
    return {
        ("encoder.trunk." + k[len("encoder.") :] if k.startswith(_TRUNK_PREFIXES) else k): v
        for k, v in state.items()
    }


# ----------------------------------------------------------------------------- writing
def write_checkpoint(
    final: str | Path,
    state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    *,
    dtype: str = "float32",
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a checkpoint directory atomically: weights, ``config.json``, then ``extra(tmp)``.

    ``state`` is a model's state_dict; its floating-point tensors are stored as ``dtype``
    (``"float32"``: bit-identical; ``"bfloat16"``: half the size). ``meta`` becomes
    ``config.json`` with this module's ``format_version``. ``extra`` writes further files
    (``trainer.pt``, ``model_card.md``, ``head.safetensors``) into the temporary directory
    before it is renamed to ``final``; an existing ``final`` is replaced. Files are readable
    as the umask allows (``mkdtemp`` alone would make the folder private). Returns ``final``.
    """
    if dtype not in DTYPES:
        raise VitnirsError(f"dtype must be one of {sorted(DTYPES)}; got {dtype!r}")
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{final.name}.", dir=final.parent))
    try:
        target = DTYPES[dtype]
        tensors = {
            k: v.detach().cpu().to(target if v.is_floating_point() else v.dtype, copy=True).contiguous()
            for k, v in state.items()
        }
        save_file(tensors, str(tmp / MODEL_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        doc = {"format_version": FORMAT_VERSION, **{k: v for k, v in meta.items() if k != "format_version"}}
        (tmp / CONFIG_FILE).write_text(json.dumps(doc, indent=1), encoding="utf-8")
        if extra is not None:
            extra(tmp)
        umask = os.umask(0)
        os.umask(umask)
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~umask)
        os.chmod(tmp, 0o777 & ~umask)
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
