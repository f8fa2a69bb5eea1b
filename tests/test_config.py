"""Configuration schema, YAML loading, --set overrides and the generated reference."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from vitnirs.config import Config, config_reference_markdown, load_config, save_config
from vitnirs.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    return str(info.value)


def test_defaults_are_the_roadmap_values():
    cfg = load_config()
    assert cfg.data.real_datasets_dir is None
    assert (cfg.data.synth_samples, cfg.data.synth_complexity) == (10000, "realistic")
    assert cfg.data.regions == ["NIR", "vis-NIR"]
    ts = cfg.training_strategy
    assert (ts.use_targets_in_pretraining, ts.sampling, ts.p_synth) == (False, "uniform_by_dataset", 0.3)
    assert ts.steps_per_epoch is None and ts.steps_per_dataset_k == 200  # 200 x 45 datasets = 9000
    assert len(ts.synthetic_priorities) == 5
    aug = cfg.augmentation
    assert (aug.p_baseline_drift, aug.p_scatter, aug.p_noise, aug.p_band_mask) == (0.5, 0.5, 0.8, 0.2)
    assert (cfg.masking.mask_ratio, cfg.masking.min_block_size, cfg.masking.max_block_size) == (0.7, 5, 50)
    m = cfg.model
    assert (m.preset, m.tokenizer, m.trunk) == ("small", "patch", "transformer")  # the shipped model
    assert (m.d_model, m.n_latents, m.n_heads, m.n_cross_layers, m.n_self_layers, m.d_meta) == (
        64, None, 4, None, 3, 16,
    )  # fmt: skip
    t = cfg.training
    assert (t.epochs, t.batch_size, t.lr, t.weight_decay, t.warmup_epochs) == (200, 64, 1e-4, 0.05, 10)
    losses = cfg.losses
    assert (losses.mae_weight, losses.baseline_consistency_weight, losses.contrastive_weight) == (
        1.0,
        0.1,
        0.0,
    )
    assert cfg.evaluation.downstream_methods == ["ridge", "pls", "tabpfn"]
    assert "lambda_baseline" not in cfg.to_dict()["training"]


def test_shipped_yaml_files_load():
    assert load_config(ROOT / "configs" / "default.yaml") == Config()
    demo = load_config(ROOT / "configs" / "demo.yaml")
    assert (demo.model.preset, demo.model.d_model, demo.model.tokenizer, demo.training.epochs) == (
        "small", 64, "patch", 8
    )  # fmt: skip
    assert demo.training_strategy.steps_per_epoch == 50 and demo.evaluation.readout == "groups8"


def test_the_demo_is_the_patch_recipe_of_the_study():
    """demo.yaml is the shipped recipe (the research wing's recipes/patch.yaml, which the patch_*.yaml
    recipes build on) read out as groups8: every other section is the same, so the two cannot drift apart."""
    demo = load_config(ROOT / "configs" / "demo.yaml").to_dict()
    patch = load_config(ROOT / "src" / "vitnirs" / "research" / "recipes" / "patch.yaml").to_dict()
    assert demo["evaluation"].pop("readout") == "groups8" and patch["evaluation"].pop("readout") == "mean"
    assert demo == patch


def test_set_overrides():
    cfg = load_config(
        ROOT / "configs" / "demo.yaml",
        ["training.epochs=1", "training_strategy.steps_per_epoch=2", "training.batch_size=4"],
    )
    assert (cfg.training.epochs, cfg.training_strategy.steps_per_epoch, cfg.training.batch_size) == (1, 2, 4)
    cfg = load_config(overrides=["data.regions=[NIR, MIR]", "data.store_dir=null", "losses.mae_weight=2"])
    assert cfg.data.regions == ["NIR", "MIR"] and cfg.data.store_dir is None
    assert (
        load_config(overrides=["training_strategy.steps_per_epoch=null"]).training_strategy.steps_per_epoch
        is None
    )


def test_exponent_without_dot_is_a_float(tmp_path):
    lr = load_config(overrides=["training.lr=1e-4"]).training.lr
    assert isinstance(lr, float) and lr == 0.0001
    lr = load_config(write(tmp_path, "training:\n  lr: 1e-4\n")).training.lr
    assert isinstance(lr, float) and lr == 0.0001


def test_unknown_key_names_dotted_key_and_allowed(tmp_path):
    message = error_of(write(tmp_path, "model:\n  foo: 1\n"))
    assert "model.foo" in message and "trunk, d_model" in message
    message = error_of(overrides=["model.foo=1"])
    assert "foo" in message and "trunk, d_model" in message


def test_unknown_section_and_malformed_override(tmp_path):
    assert "unknown section 'modle'" in error_of(write(tmp_path, "modle:\n  d_model: 1\n"))
    assert "training_strategy" in error_of(overrides=["modle.d_model=1"])
    assert "section.key=value" in error_of(overrides=["training.epochs"])


def test_bad_values_name_key_and_allowed():
    message = error_of(overrides=["data.synth_complexity=hard"])
    assert "data.synth_complexity" in message and "simple, realistic, complex" in message
    message = error_of(overrides=["masking.mask_ratio=1.5"])
    assert "masking.mask_ratio" in message and "1.5" in message and ">= 0 and < 1" in message
    message = error_of(overrides=["data.regions=[NIR, UV]"])
    assert "data.regions[1]" in message and "NIR, vis-NIR, MIR" in message
    message = error_of(overrides=["training.epochs=0", "augmentation.p_noise=2"])
    assert "training.epochs" in message and "augmentation.p_noise" in message  # one line each
    assert len(message.splitlines()) == 3


def test_cross_field_checks():
    message = error_of(overrides=["masking.min_block_size=10", "masking.max_block_size=5"])
    assert "masking.max_block_size" in message and "masking.min_block_size" in message
    message = error_of(overrides=["model.d_model=130", "model.n_heads=4"])
    assert "model.d_model" in message and "model.n_heads" in message


def test_lambda_baseline_alias(tmp_path):
    with pytest.warns(UserWarning, match="lambda_baseline"):
        cfg = load_config(write(tmp_path, "training:\n  lambda_baseline: 0.3\n"))
    assert cfg.losses.baseline_consistency_weight == 0.3
    assert "lambda_baseline" not in cfg.to_dict()["training"]
    with pytest.warns(UserWarning, match="lambda_baseline"):
        cfg = load_config(ROOT / "configs" / "default.yaml", ["training.lambda_baseline=0.2"])
    assert cfg.losses.baseline_consistency_weight == 0.2
    text = "training:\n  lambda_baseline: 0.3\nlosses:\n  baseline_consistency_weight: 0.1\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = error_of(write(tmp_path, text))
    assert "training.lambda_baseline" in message and "losses.baseline_consistency_weight" in message


def test_declarations_are_validated_and_canonical():
    cfg = load_config(
        overrides=['data.declarations=[{pattern: "corn_*.csv", unit: nanometers, signal_type: "%R"}]']
    )
    declaration = cfg.data.declarations[0]
    assert (declaration.pattern, declaration.unit, declaration.signal_type) == (
        "corn_*.csv",
        "nm",
        "reflectance%",
    )
    message = error_of(overrides=['data.declarations=[{pattern: "*.csv", unit: furlong}]'])
    assert "data.declarations" in message and "cm-1" in message


def test_unreadable_or_non_mapping_file(tmp_path):
    assert "missing.yaml" in error_of(tmp_path / "missing.yaml")
    path = write(tmp_path, "- a\n- b\n")
    assert str(path) in error_of(path)
    assert str(path) in error_of(write(tmp_path, "model: {d_model: [\n"))


def test_save_config_round_trips(tmp_path):
    cfg = load_config(ROOT / "configs" / "demo.yaml", ["data.declarations=[{pattern: a*.csv, unit: nm}]"])
    save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(tmp_path / "run" / "config.yaml") == cfg


def test_reference_doc_is_up_to_date():
    on_disk = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert config_reference_markdown() == on_disk, (
        "docs/configuration.md is out of date: run "
        "`python -m vitnirs.config --write-docs docs/configuration.md`"
    )


def test_baseline_method_names_match_the_baselines_module():
    from vitnirs.config import _BASELINE_METHODS
    from vitnirs.evaluate.baselines import LINEAR_METHODS, NONLINEAR_METHODS

    assert set(_BASELINE_METHODS) == set(LINEAR_METHODS + NONLINEAR_METHODS)


# ----------------------------------------------------------------------------- the batch contract
# Config fields that shape a batch, and the BatchSettings field each one becomes.
BATCH_FIELDS = {
    ("training", "batch_size"): "batch_size", ("training", "token_budget"): "token_budget",
    ("training", "seed"): "seed", ("training", "max_points"): "max_points",
    ("training", "pad_multiple"): "pad_multiple", ("losses", "contrastive_weight"): "two_views",
    ("training_strategy", "p_synth"): "p_synth", ("training_strategy", "dataset_weights"): "dataset_weights",
    ("training_strategy", "sampling"): "sampling", ("training_strategy", "curriculum_steps"): "curriculum_steps",
    ("training_strategy", "p_meta_unknown"): "p_meta_unknown", ("training_strategy", "p_mix"): "p_mix",
    ("training_strategy", "mix_group"): "mix_group", ("training_strategy", "mix_max_components"): "mix_max_components",
    ("masking", "mask_ratio"): "mask_ratio", ("masking", "min_block_size"): "min_block",
    ("masking", "max_block_size"): "max_block",
    **{("augmentation", k): k for k in (
        "p_baseline_drift", "p_scatter", "p_noise", "p_band_mask", "p_shift", "p_blur", "p_response", "p_crop",
        "crop_min_fraction",
        "p_subsample", "subsample_min_fraction",
    )},
}  # fmt: skip
CHANGED = {
    "batch_size": 3, "token_budget": 999, "seed": 7, "max_points": 100, "pad_multiple": 4,
    "contrastive_weight": 0.5, "p_synth": 0.9, "dataset_weights": {"a": 2.0}, "sampling": "proportional",
    "curriculum_steps": 11, "mask_ratio": 0.4, "min_block_size": 2, "max_block_size": 9,
    "crop_min_fraction": 0.8, "subsample_min_fraction": 0.7, "mix_group": 5, "mix_max_components": 3,
}  # fmt: skip


def test_batch_settings_have_no_defaults_of_their_own():
    from dataclasses import MISSING, fields

    from vitnirs.batching.collate import BatchSettings

    with_default = [f.name for f in fields(BatchSettings) if f.default is not MISSING]
    assert not with_default and not [
        f.name for f in fields(BatchSettings) if f.default_factory is not MISSING
    ]


def test_every_batch_shaping_config_field_maps_to_a_batch_settings_field():
    from dataclasses import fields

    from vitnirs.batching.collate import BatchSettings

    names = {f.name for f in fields(BatchSettings)}
    assert set(BATCH_FIELDS.values()) == names  # each BatchSettings field comes from the config
    for section in ("augmentation", "masking"):  # these sections only shape batches: all of them map
        for key in Config.model_fields[section].annotation.model_fields:
            assert (section, key) in BATCH_FIELDS, f"{section}.{key} reaches no BatchSettings field"
    base = BatchSettings.from_config(load_config())
    for (section, key), field in BATCH_FIELDS.items():
        value = CHANGED.get(key, 0.11)
        changed = BatchSettings.from_config(load_config(overrides=[f"{section}.{key}={json.dumps(value)}"]))
        assert getattr(changed, field) != getattr(base, field), f"{section}.{key} does not reach {field}"
