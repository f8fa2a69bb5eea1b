"""Typed configuration: one schema, YAML files, ``--set`` overrides, a generated reference.

A run is configured by a YAML file with eight sections (``data``, ``training_strategy``,
``augmentation``, ``masking``, ``model``, ``training``, ``losses``, ``evaluation``) and
overridden from the command line with ``--set section.key=value``. Everything is checked at
load: an unknown key or a bad value is a :class:`~vitnirs.errors.ConfigError` naming the
dotted key, the value and what is allowed. The schema's defaults are the roadmap's
``configs/default.yaml``; ``docs/configuration.md`` is generated from this file
(``python -m vitnirs.config --write-docs docs/configuration.md``).
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vitnirs.config_text import explain_error, reference_markdown
from vitnirs.data.signal import SIGNAL_TYPES, UNITS, normalize_signal_type, normalize_unit
from vitnirs.errors import ConfigError
from vitnirs.model.sizes import DECODER_KEYS, PRESETS, SHIPPED_PRESET, TOKENIZER_NAMES, TRUNK_KEYS

Region = Literal["NIR", "vis-NIR", "MIR"]
SyntheticPriority = Literal[
    "instrument_grids", "baseline_variation", "scatter_variation", "noise_profiles", "paired_views"
]
_BASELINE_METHODS = (
    "pls_raw",
    "asls_snv_pls",
    "snv_sg1_pls",
    "pca_ridge",
    "aom_pls",
    "aom_ridge",
    "krr_raw",
    "krr_snv_sg1",
    "svr_raw",
    "svr_snv_sg1",
)  # fmt: skip  (vitnirs.evaluate.baselines; a test checks they agree)
BaselineMethod = Literal[_BASELINE_METHODS]
DownstreamMethod = Literal["ridge", "pls", "tabpfn", "kernel_ridge", "mlp", "logistic"]
Probability = Annotated[float, Field(ge=0, le=1)]

# Old spellings still accepted: alias (section, key) -> canonical (section, key).
ALIASES = {("training", "lambda_baseline"): ("losses", "baseline_consistency_weight")}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DeclarationRule(_Section):
    """Axis unit and signal type declared for the files whose name matches a glob pattern."""

    pattern: str = Field(min_length=1, description="Glob pattern matched against file names.")
    unit: str | None = Field(
        None, description=f"Axis unit of the matching files: {', '.join(UNITS)} (usual spellings accepted)."
    )
    signal_type: str | None = Field(
        None, description=f"Signal type of the matching files: {', '.join(SIGNAL_TYPES)}."
    )

    @field_validator("unit")
    @classmethod
    def _canonical_unit(cls, value: str | None) -> str | None:
        return None if value is None else normalize_unit(value)

    @field_validator("signal_type")
    @classmethod
    def _canonical_signal_type(cls, value: str | None) -> str | None:
        return None if value is None else normalize_signal_type(value)


class DataConfig(_Section):
    """Where spectra come from: the real bank, synthetic spectra, the prepared store."""

    real_datasets_dir: str | None = Field(
        None, description="Folder of dataset CSVs (your bank); null uses the embedded demo bank."
    )
    store_dir: str | None = Field(None, description="Folder of prepared arrays; null uses the run folder.")
    synth_samples: int = Field(10000, ge=0, description="Number of synthetic spectra to generate.")
    synth_complexity: Literal["simple", "realistic", "complex"] = Field(
        "realistic", description="Complexity level of nirs4all's synthetic spectra builder."
    )
    synth_paired_fraction: Probability = Field(
        0.3, description="Fraction of synthetic spectra generated as paired views of one sample."
    )
    regions: list[Region] = Field(
        ["NIR", "vis-NIR"], min_length=1, description="Spectral regions pretraining uses."
    )
    declarations: list[DeclarationRule] = Field(
        [], description="Per-file-pattern declarations of axis unit and signal type."
    )
    asls_lam: float = Field(1e6, gt=0, description="AsLS baseline smoothness (lambda).")
    asls_p: float = Field(0.01, gt=0, lt=1, description="AsLS baseline asymmetry (p).")
    asls_max_iter: int = Field(50, ge=1, description="Maximum AsLS iterations per spectrum.")
    asls_tol: float = Field(1e-3, gt=0, description="AsLS convergence tolerance.")
    exclude_datasets: list[str] = Field(
        [],
        description="Store datasets left out of pretraining (strict leave-one-dataset-out); prepared all the same.",
    )
    workers: int = Field(2, ge=1, description="Worker processes used by `vitnirs prepare`.")
    seed: int = Field(0, description="Random seed for synthetic generation and data splits.")


class TrainingStrategyConfig(_Section):
    """How pretraining samples datasets and mixes in synthetic spectra (roadmap section 1)."""

    use_targets_in_pretraining: bool = Field(
        False, description="Use targets during pretraining (off: self-supervised only)."
    )
    sampling: Literal["uniform_by_dataset", "proportional"] = Field(
        "uniform_by_dataset", description="How the dataset of each sample is drawn."
    )
    steps_per_epoch: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Steps per virtual epoch; null means K x number of datasets."
    )
    steps_per_dataset_k: int = Field(200, ge=1, description="K: steps per dataset in a virtual epoch.")
    p_synth: Probability = Field(0.3, description="Probability that a sample is replaced by a synthetic one.")
    p_mix: Probability = Field(
        0.0,
        description="Share of a batch's slots filled with mixtures of real spectra: groups of mix_group convex "
        "combinations (Dirichlet weights) of the same 2 to mix_max_components spectra of one real dataset; the "
        "batch carries each row's group (mix_group) and weights (mix_weights). Absorbance is linear in "
        "concentration: a mixture is a plausible new sample of that matrix.",
    )
    mix_group: int = Field(8, ge=2, description="Mixtures per group (one dataset, the same base spectra).")
    mix_max_components: int = Field(
        4, ge=2, le=4, description="Most base spectra in a mixture (2 to this many, drawn per group)."
    )
    p_meta_unknown: Probability = Field(
        0.0,
        description="Probability that a spectrum's metadata ids are set to unknown (0) in a view during pretraining: "
        "the encoder then learns the unknown token that every embedding is made with (the metadata rule).",
    )
    synthetic_priorities: list[SyntheticPriority] = Field(
        list(get_args(SyntheticPriority)), description="Nuisance factors synthetic spectra must cover."
    )
    dataset_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        {}, description="Sampling weight per dataset name (others weigh 1); 0 leaves a dataset out."
    )
    curriculum_steps: int = Field(
        0,
        ge=0,
        description="Steps over which sampling broadens from the larger datasets to all of them (0 = off).",
    )


class AugmentationConfig(_Section):
    """Probabilities of the nirs4all augmentations applied to each training spectrum."""

    p_baseline_drift: Probability = Field(0.5, description="Probability of adding a baseline drift.")
    p_scatter: Probability = Field(0.5, description="Probability of a multiplicative/additive scatter.")
    p_noise: Probability = Field(0.8, description="Probability of adding (wavelength-dependent) noise.")
    p_band_mask: Probability = Field(0.2, description="Probability of masking a band of wavelengths.")
    p_shift: Probability = Field(0.3, description="Probability of a small wavelength shift/stretch.")
    p_blur: Probability = Field(
        0.0, description="Probability of a Gaussian resolution blur (sigma 0.5-4 nm on the true λ)."
    )
    p_response: Probability = Field(
        0.0, description="Probability of adding a smooth detector-response curve (3 Gaussian bumps)."
    )
    p_crop: Probability = Field(0.3, description="Probability of a random wavelength crop (true λ kept).")
    crop_min_fraction: float = Field(
        0.5, gt=0, le=1, description="Smallest crop, as a fraction of the spectrum's points."
    )
    p_subsample: Probability = Field(
        0.0, description="Probability of keeping a random subset of the points (true λ kept)."
    )
    subsample_min_fraction: float = Field(
        0.5, gt=0, le=1, description="Smallest subsample, as a fraction of the spectrum's points."
    )


class MaskingConfig(_Section):
    """MAE block masking of the wavelength tokens."""

    mask_ratio: float = Field(
        0.7,
        ge=0,
        lt=1,
        description="Fraction of tokens hidden from the encoder (0 = unmasked views: set losses.mae_weight: 0).",
    )
    min_block_size: int = Field(5, ge=1, description="Smallest masked block, in tokens.")
    max_block_size: int = Field(
        50, ge=1, description="Largest masked block, in tokens (at least min_block_size)."
    )

    @model_validator(mode="after")
    def _blocks_ordered(self) -> MaskingConfig:
        if self.max_block_size < self.min_block_size:
            raise ValueError(
                f"masking.max_block_size ({self.max_block_size}) must be >= "
                f"masking.min_block_size ({self.min_block_size})"
            )
        return self


# The sizes of the model presets (vitnirs.model.sizes.PRESETS) that ModelConfig has (the decoder sizes
# are the preset's own); that module is torch-free, so loading a config stays light.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    name: {k: v for k, v in sizes.items() if k not in DECODER_KEYS} for name, sizes in PRESETS.items()
}
_PERCEIVER_ONLY = sorted(set(TRUNK_KEYS["perceiver"]) - set(TRUNK_KEYS["transformer"]))


class ModelConfig(_Section):
    """The encoder: a tokenizer (patches of one absolute lattice), a trunk, their sizes.

    ``preset`` names a whole model and fills every size key that the YAML file or ``--set`` does
    not give, so ``--set model.preset=tiny`` alone builds the tiny model; a key set explicitly
    wins over the preset. The defaults shown are the ``small`` preset's: the shipped model.
    """

    preset: Literal[tuple(PRESETS)] = Field(  # type: ignore[valid-type]
        SHIPPED_PRESET,
        description="Named model (trunk and sizes); fills every size key below that is not set explicitly. "
        "small is the shipped model; perceiver_* presets use the Perceiver trunk.",
    )
    tokenizer: Literal[TOKENIZER_NAMES] = Field(  # type: ignore[valid-type]
        "patch",
        description="patch: tokens of patch_size points of one absolute log-λ lattice (350 nm-25 µm).",
    )
    trunk: Literal[tuple(TRUNK_KEYS)] = Field(  # type: ignore[valid-type]
        "transformer",
        description="transformer: self-attention over the tokens (output: the tokens); perceiver: n_latents "
        "learned latents cross-attend to the tokens (output: the latents).",
    )
    d_model: int = Field(64, ge=1, description="Width of tokens (and latents).")
    n_heads: int = Field(4, ge=1, description="Attention heads (must divide d_model).")
    n_self_layers: int = Field(
        3, ge=0, description="Self-attention layers (over the tokens, or the latents)."
    )
    n_latents: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Perceiver trunk only: number of latents (null for the transformer trunk)."
    )
    n_cross_layers: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Perceiver trunk only: cross-attention layers, tokens to latents."
    )
    d_meta: int = Field(16, ge=0, description="Width of the metadata embedding (0 disables it).")
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Dropout probability in the encoder (0 = none, as MAE pretrains; attention dropout 0.1 measured ~1/3 of a CPU step).",
    )
    level_token: bool = Field(
        True,
        description="Feed each spectrum's (mean, log std), removed by the per-spectrum normalisation, to the "
        "encoder as a token; false keeps the token but blanks its input (the level-token ablation).",
    )
    channels: list[Literal["absorbance", "snv_dt", "sg1", "sg2"]] = Field(
        ["absorbance", "sg1"],
        min_length=1,
        description="Values per lattice point; absorbance is the per-spectrum z-scored spectrum (its SNV), "
        "snv_dt the same linearly detrended in log wavelength (SNV-DT: an offset and a tilt leave it unchanged), "
        "sg1/sg2 its Savitzky-Golay 1st/2nd derivative, each standardised.",
    )
    patch_size: int = Field(8, ge=1, description="Lattice points per patch token.")
    lattice_step: float = Field(
        0.0016,
        gt=0,
        le=0.05,
        description="Step of the log lattice (1.6 nm at 1,000 nm, 2.3 at 1,450, 4.0 at 2,500).",
    )
    sg_window_nm: float = Field(
        20.0, gt=0, description="Savitzky-Golay window at 1,450 nm (odd lattice points, >= 5)."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tokens" in data:
            raise ValueError(
                "model.tokens is retired: patch tokens are the only tokenizer (model.tokenizer: patch), and the "
                "Perceiver is a trunk over them (model.trunk: perceiver, or preset perceiver_base)"
            )
        if isinstance(data, dict) and data.get("preset", SHIPPED_PRESET) in MODEL_PRESETS:
            return {**MODEL_PRESETS[data.get("preset", SHIPPED_PRESET)], **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})"
            )
        given = {k: getattr(self, k) for k in _PERCEIVER_ONLY}
        if self.trunk == "perceiver" and None in given.values():
            raise ValueError(f"model.trunk perceiver needs {_PERCEIVER_ONLY} (or preset perceiver_tiny/base)")
        if self.trunk != "perceiver" and any(v is not None for v in given.values()):
            raise ValueError(
                f"{_PERCEIVER_ONLY} are sizes of the perceiver trunk; set them to null for '{self.trunk}'"
            )
        return self


class TrainingConfig(_Section):
    """Optimisation of the pretraining run."""

    epochs: int = Field(200, ge=1, description="Number of (virtual) epochs.")
    batch_size: int = Field(64, ge=1, description="The most spectra in a batch (3090: 64, A100: 128-256).")
    lr: float = Field(1e-4, gt=0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.05, ge=0, description="AdamW weight decay.")
    warmup_epochs: int = Field(10, ge=0, description="Epochs of linear learning-rate warm-up.")
    min_lr_ratio: float = Field(
        0.01, ge=0, le=1, description="Final learning rate of the cosine decay, as a fraction of lr."
    )
    seed: int = Field(0, description="Random seed for model initialisation and sampling.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Autocast precision; auto = bf16 on a GPU that supports it, else fp32."
    )
    device: str = Field("auto", description="Torch device (cpu, cuda, cuda:1); auto = cuda when available.")
    grad_clip: float = Field(1.0, ge=0, description="Gradient-norm clipping threshold (0 = off).")
    token_budget: Annotated[int, Field(ge=1)] | None = Field(
        None, description="The most tokens (spectra x padded length) in a batch; null = batch_size only."
    )
    max_points: int = Field(
        2048, ge=16, description="Longest spectrum fed to the model; longer ones are subsampled."
    )
    pad_multiple: int = Field(
        8, ge=1, description="A batch's padded length is rounded up to a multiple of this."
    )
    num_workers: int = Field(2, ge=0, description="Data-loader worker processes (0 = in the main process).")
    log_every: int = Field(10, ge=1, description="Steps between metric lines in metrics.jsonl.")
    checkpoint_every: int = Field(
        1000, ge=1, description="Steps between checkpoints (one is also saved at the end)."
    )
    keep_checkpoints: int = Field(3, ge=1, description="Newest checkpoints kept in RUN_DIR/checkpoints.")
    probe_every: int = Field(
        500, ge=0, description="Steps between synthetic-vs-real separability probes (0 = off)."
    )
    probe_samples: int = Field(
        200, ge=20, description="Spectra embedded per probe (half synthetic, half real, held-out step)."
    )
    tensorboard: bool = Field(False, description="Also write TensorBoard scalars to RUN_DIR/tensorboard.")


class LossesConfig(_Section):
    """Weights of the pretraining losses (alias: training.lambda_baseline)."""

    mae_weight: float = Field(1.0, ge=0, description="Weight of the masked reconstruction loss.")
    mae_clean_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of masked prediction of the clean spectrum: the encoder reads the nuisance view, "
        "the decoder predicts the masked patches of the same spectrum before its nuisances.",
    )
    baseline_consistency_weight: float = Field(
        0.1, ge=0, description="Weight of the baseline consistency loss (alias: training.lambda_baseline)."
    )
    contrastive_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the two-view invariance loss (0 disables it and the second view).",
    )
    contrastive: Literal["vicreg", "infonce"] = Field(
        "vicreg", description="Invariance loss between the two views."
    )
    temperature: float = Field(0.1, gt=0, description="InfoNCE temperature.")
    semi_supervised_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the optional semi-supervised head (a per-dataset linear map from the embedding "
        "to the dataset's first numeric y_*, standardised); needs training_strategy.use_targets_in_pretraining.",
    )
    fewshot_ridge_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the few-shot ridge loss (MetaOptNet style): in each group of mixtures of real "
        "spectra, a closed-form ridge fitted on the first half's embeddings predicts the other half's mixing "
        "weights; its query error over the weights' variance (~1 = no better than the mean). 0 disables it.",
    )
    fewshot_ridge_lambda: float = Field(
        0.1,
        gt=0,
        description="Ridge penalty of the few-shot ridge loss, relative to the mean squared norm of the centred "
        "support embeddings (so the loss does not depend on the embedding's scale).",
    )

    @property
    def two_views(self) -> bool:
        """Whether batches carry a second view (the contrastive loss is on)."""
        return self.contrastive_weight > 0


class EvaluationConfig(_Section):
    """Downstream evaluation on frozen embeddings."""

    downstream_methods: list[DownstreamMethod] = Field(
        ["ridge", "pls", "tabpfn"], min_length=1, description="Heads fitted on the frozen embedding."
    )
    baseline_methods: list[BaselineMethod] = Field(
        list(_BASELINE_METHODS),
        description="Classical Phase 0 baselines (nirs4all pipelines, AOM-PLS/Ridge, kernel ridge, SVR).",
    )
    datasets: list[str] = Field(
        [],
        description="Datasets to evaluate (store names); empty = every real dataset with targets in data.regions.",
    )
    max_targets: int = Field(
        3, ge=1, description="Numeric y_* targets evaluated per dataset, in column order."
    )
    aom_bank: Literal["default", "compact"] = Field(
        "default", description="AOM-PLS operator bank: the published 'default' or the ~30x faster 'compact'."
    )
    repeats: int = Field(5, ge=0, description="Extra random 80/20 splits for datasets under 200 samples.")
    transfer: bool = Field(
        True,
        description="Cross-instrument transfer (corn, tablets): fit on A's cal, test on B's test, k = 0/5/10.",
    )
    transfer_k: list[Annotated[int, Field(ge=0)]] = Field(
        [0, 5, 10], min_length=1, description="Transfer samples of B added to A's calibration rows (0: none)."
    )
    class_columns: list[str] = Field(
        ["class"],
        description="Metadata columns evaluated as class targets (besides y_* columns with non-numeric values).",
    )
    lodo_datasets: list[str] = Field(
        [],
        description="Downstream-only LODO: datasets scored with the encoder pretrained on everything (labelled so).",
    )
    lodo_steps: int = Field(
        300,
        ge=1,
        description="Pretraining steps of each strict LODO run (`vitnirs lodo`: one run per dataset).",
    )
    robustness: bool = Field(
        True, description="Robustness curves: drift, scatter, noise, shift injected into test spectra."
    )
    robustness_datasets: list[str] = Field(
        [], description="Datasets of the robustness curves; empty = the first two evaluated datasets."
    )
    robustness_kinds: list[Literal["drift", "scatter", "noise", "shift"]] = Field(
        ["drift", "scatter", "noise", "shift"],
        min_length=1,
        description="Perturbations of the robustness curves.",
    )
    synthetic_checks: bool = Field(
        True, description="Real-vs-synthetic separability (embedding and raw) and paired-view invariance."
    )
    artefacts: bool = Field(
        True, description="Write the report's embedding map and masked reconstructions beside metrics.json."
    )
    untrained_control: bool = Field(
        True,
        description="Score the same heads on the embedding of the same network with untrained weights (seeds "
        "untrained_seeds): the control that says whether pretraining paid (metrics.json: controls, summary "
        "pretrained_vs_untrained; also in the transfer and robustness sections).",
    )
    untrained_seeds: list[int] = Field(
        [0, 1],
        min_length=1,
        description="Seeds of the untrained control networks; pretrained_vs_untrained divides by the mean of "
        "their best-head scores.",
    )
    classical_control: bool = Field(
        True,
        description="Score the same heads on classical features (SNV + SG first derivative of the spectra): the "
        "control that says whether the embedding carries more than a classical preprocessing.",
    )
    minirocket_control: bool = Field(
        False,
        description="Score the same heads on MiniRocket features (aeon; random convolutional kernels fitted, "
        "without targets, on each dataset's rows): the strongest untrained time-series representation, also "
        "in the transfer and robustness sections; its head fits are cached with the baselines. Off by default "
        "(9,996 features per spectrum make every head slower); on in the study's scorecards. Needs "
        "`pip install 'vitnirs[eval]'`.",
    )
    readout: Literal["mean", "mean+std", "mean+level", "mean+max", "groups4", "groups8"] = Field(
        "mean",
        description="How the encoder's (N, D) output tokens become the embedding the heads see "
        "(vitnirs.model.readout): mean (D values, the default); mean+std, mean+max (the mean, then the "
        "std or max over the valid tokens, 2D); mean+level (the mean, then the spectrum's mean and log std, "
        "D + 2); groups4, groups8 (the mean of each of G contiguous groups of the valid tokens, G·D).",
    )
    metadata: Literal["unknown", "store"] = Field(
        "unknown",
        description="Metadata ids at embedding time: unknown (the rule: as SpectralEmbedder and `vitnirs embed`, "
        "so an embedding depends on the spectrum and its grid alone) or the store's (instrument ids; an ablation).",
    )
    fewshot: bool = Field(
        False,
        description="Few-shot calibration (metrics.json: fewshot, fewshot_summary): every regression head on "
        "every feature source, and pls_raw / snv_sg1_pls / aom_pls, fitted on fewshot_draws fixed draws of n "
        "train rows (n in fewshot_sizes) of the first split and scored on its test rows (vitnirs.evaluate.fewshot). "
        "Off by default: the classical draws (AOM-PLS above all) take up to minutes per target on a first run; they "
        "are cached in baseline_cache.json, and the heads take seconds per target.",
    )
    fewshot_sizes: list[Annotated[int, Field(ge=2)]] = Field(
        [10, 25, 50],
        min_length=1,
        description="Calibration sizes n of the few-shot section; an n not below a split's train rows is skipped.",
    )
    fewshot_draws: int = Field(
        10, ge=1, description="Draws of n rows per few-shot size (seeded by training.seed, the draw and n)."
    )
    nuisance_projection: int = Field(
        0,
        ge=0,
        description="Nuisance projection at the readout (EPO on the embedding; vitnirs.evaluate.projection): "
        "the number of directions removed from every encoder embedding (the pretrained one and the untrained "
        "controls), per dataset: the top right singular vectors of the embedding differences between each "
        "spectrum with a baseline drift or a scatter and the clean one, fitted on the dataset's rows (no target; "
        "transfer: on the union of the instrument group's rows) and removed from train, test and perturbed "
        "rows alike. 0 = off.",
    )


class Config(_Section):
    """The whole configuration of a run."""

    data: DataConfig = DataConfig()
    training_strategy: TrainingStrategyConfig = TrainingStrategyConfig()
    augmentation: AugmentationConfig = AugmentationConfig()
    masking: MaskingConfig = MaskingConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    losses: LossesConfig = LossesConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    @model_validator(mode="after")
    def _something_to_reconstruct(self) -> Config:
        if self.masking.mask_ratio == 0 and (self.losses.mae_weight > 0 or self.losses.mae_clean_weight > 0):
            raise ValueError(
                "masking.mask_ratio is 0 (unmasked views) but losses.mae_weight or mae_clean_weight > 0: there "
                "is nothing to reconstruct; set them to 0 and give another loss a weight"
            )
        return self

    @model_validator(mode="after")
    def _targets_switch(self) -> Config:
        on, weight = self.training_strategy.use_targets_in_pretraining, self.losses.semi_supervised_weight
        if weight > 0 and not on:
            raise ValueError(
                f"losses.semi_supervised_weight ({weight}) > 0 uses targets in pretraining: "
                "set training_strategy.use_targets_in_pretraining: true as well (off by default)"
            )
        if on and weight == 0:
            raise ValueError(
                "training_strategy.use_targets_in_pretraining is true but losses.semi_supervised_weight is 0: "
                "give the semi-supervised head a (small) weight, e.g. 0.05"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict of the resolved configuration."""
        return self.model_dump(mode="json")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` (no dot) as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Load, override and validate a configuration.

    Parameters
    ----------
    path:
        YAML file; ``None`` gives the built-in defaults.
    overrides:
        ``section.key=value`` strings (the CLI's ``--set``); values are YAML
        (``[NIR, MIR]``, ``null``, ``true``, ``1e-4``) and win over the file.

    Raises
    ------
    ConfigError
        Unreadable file, unknown section or key, or a value that is not allowed.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _resolve_aliases(_read_yaml(Path(path)), source=str(path))
    patch: dict[str, Any] = {}
    for item in overrides:
        section, key, value = _parse_override(item)
        patch.setdefault(section, {})[key] = value
    for section, values in _resolve_aliases(patch, source="--set").items():
        raw.setdefault(section, {}).update(values)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        lines = [explain_error(err, Config) for err in exc.errors()]
        where = f" in {path}" if path is not None else ""
        raise ConfigError(f"invalid configuration{where}:\n  " + "\n  ".join(lines)) from None


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved configuration as YAML (saved with every run)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")


def config_reference_markdown() -> str:
    """The configuration reference (``docs/configuration.md``), generated from the schema."""
    intro = [
        "<!-- Generated from src/vitnirs/config.py by "
        "`python -m vitnirs.config --write-docs docs/configuration.md`; do not edit. -->",
        "",
        "A run reads one YAML file (`configs/default.yaml`, `configs/demo.yaml`) and any number of",
        "`--set section.key=value` overrides (values are YAML: `--set data.regions=[NIR,MIR]`,",
        "`--set training.lr=1e-4`, `--set data.real_datasets_dir=null`). Unknown keys and values",
        "outside what is allowed are errors naming the key. The resolved configuration is saved",
        "with every run. `training.lambda_baseline` is accepted as an alias of",
        "`losses.baseline_consistency_weight` (with a warning).",
    ]
    sections = [(name, f.annotation) for name, f in Config.model_fields.items()]
    sections.append(("data.declarations[]", DeclarationRule))
    return reference_markdown("Configuration reference", intro, sections)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a configuration file must be a mapping of sections, not {type(data).__name__}"
        )
    # A section whose keys are all commented out reads as null: treat it as empty.
    return {section: ({} if values is None else values) for section, values in data.items()}


def _parse_override(item: str) -> tuple[str, str, Any]:
    sections = ", ".join(Config.model_fields)
    dotted, eq, text = item.partition("=")
    section, dot, key = dotted.strip().partition(".")
    if not eq or not dot or not key:
        raise ConfigError(f"--set '{item}': expected section.key=value (sections: {sections})")
    if section not in Config.model_fields:
        raise ConfigError(f"--set '{item}': unknown section '{section}'; allowed: {sections}")
    fields = Config.model_fields[section].annotation.model_fields
    if key not in fields and (section, key) not in ALIASES:
        allowed = ", ".join(fields)
        raise ConfigError(f"--set '{item}': unknown key '{key}' in section '{section}'; allowed: {allowed}")
    try:
        return section, key, yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set '{item}': the value is not valid YAML ({exc})") from None


def _resolve_aliases(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Move alias keys to their canonical place, with a warning; a conflict is an error."""
    for (section, key), (canon_section, canon_key) in ALIASES.items():
        values = raw.get(section)
        if not isinstance(values, dict) or key not in values:
            continue
        value = values.pop(key)
        target = raw.setdefault(canon_section, {})
        if not isinstance(target, dict):
            continue  # validation reports the malformed section
        if canon_key in target and target[canon_key] != value:
            raise ConfigError(
                f"{source}: {section}.{key} ({value!r}) and {canon_section}.{canon_key} "
                f"({target[canon_key]!r}) mean the same thing but differ; "
                f"keep only {canon_section}.{canon_key}"
            )
        target[canon_key] = value
        warnings.warn(
            f"{source}: {section}.{key} is an alias, moved to {canon_section}.{canon_key}",
            UserWarning,
            stacklevel=3,
        )
    return raw


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--write-docs":
        raise SystemExit("usage: python -m vitnirs.config --write-docs docs/configuration.md")
    Path(sys.argv[2]).write_text(config_reference_markdown(), encoding="utf-8")
    print(f"wrote {sys.argv[2]}")
