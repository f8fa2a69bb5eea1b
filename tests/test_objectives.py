"""The objective as parts (vitnirs.train.objectives): the terms are found, built from the config,
a new term is one class that reads the views it declares in the one encoder call, a term's EMA
teacher follows the student and is saved but never optimised."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from test_losses import pretrain_batch

from vitnirs.config import Config, LossesConfig
from vitnirs.model import build_mae
from vitnirs.train.loop import param_groups
from vitnirs.train.objectives import ObjectiveTerm, PretrainObjective, build_terms, ema_update, term_classes
from vitnirs.train.objectives.contrastive import Contrastive
from vitnirs.train.objectives.reconstruction import Reconstruction
from vitnirs.train.objectives.semi_supervised import SemiSupervised

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(seed: int = 0):
    torch.manual_seed(seed)
    return build_mae("tiny").eval()


class ProbeTerm(ObjectiveTerm):
    """A new term: reads the clean view only, records what it was handed."""

    name = "probe_term"
    views = ("clean",)
    weight_key = "mae_weight"  # any existing key: it is never built from the config here

    def __init__(self, weight: float):
        super().__init__(weight)
        self.seen: list[dict] = []

    def forward(self, model, encoded, batch):
        self.seen.append(dict(encoded))
        return {self.name: encoded["clean"].embedding.pow(2).mean(), f"{self.name}_part": torch.tensor(7.0)}


class TeacherTerm(ObjectiveTerm):
    """A term that owns an EMA teacher of the encoder: the student's embedding regresses onto it."""

    name = "teacher_term"
    views = ("input",)
    momentum = 0.9

    def __init__(self, weight: float, model):
        super().__init__(weight)
        self.teacher = copy.deepcopy(model.encoder).requires_grad_(False)

    def forward(self, model, encoded, batch):
        with torch.no_grad():
            target = self.teacher(
                batch["values"], batch["wavelengths"], batch["valid"], batch["level"], batch.get("meta")
            ).embedding
        return {self.name: F.mse_loss(encoded["input"].embedding, target + 1.0)}  # + 1: a real gradient

    def after_step(self, model) -> None:
        ema_update(self.teacher, model.encoder, self.momentum)


def spy_encoder(model) -> list[dict]:
    """Record every ``forward_encoder`` call's batch (the call still runs)."""
    calls: list[dict] = []
    original = model.forward_encoder

    def spy(cat):
        calls.append(cat)
        return original(cat)

    model.forward_encoder = spy
    return calls


# ----------------------------------------------------------------------------- discovery, config
def test_term_classes_are_the_package_terms_each_with_a_config_key():
    classes = term_classes()
    assert set(classes) == {"mae", "mae_clean", "baseline", "contrastive", "semi_supervised", "fewshot_ridge"}
    assert "probe_term" not in classes and "teacher_term" not in classes  # tests' terms stay out
    for name, cls in classes.items():
        assert cls.name == name and issubclass(cls, ObjectiveTerm)
        assert cls.config_key().startswith(name) or cls.weight_key, name
        assert cls.config_key() in LossesConfig.model_fields, cls.config_key()
        assert set(cls.views) <= {"input", "corrected", "clean", "view2"} and cls.views, name
    assert classes["baseline"].config_key() == "baseline_consistency_weight"


def test_build_terms_builds_only_positive_weights():
    model = tiny()
    losses = Config().losses
    terms = build_terms(losses, model=model)
    assert {t.name: t.weight for t in terms} == {"mae": 1.0, "baseline": 0.1}
    more = losses.model_copy(update={"contrastive_weight": 0.3, "contrastive": "infonce", "temperature": 0.2})
    built = {t.name: t for t in build_terms(more, model=model)}
    assert set(built) == {"mae", "baseline", "contrastive"}
    assert isinstance(built["contrastive"], Contrastive)
    assert (built["contrastive"].weight, built["contrastive"].kind, built["contrastive"].temperature) == (
        0.3,
        "infonce",
        0.2,
    )
    off = losses.model_copy(
        update={"mae_weight": 0.0, "baseline_consistency_weight": 0.0, "contrastive_weight": 1.0}
    )
    assert [t.name for t in build_terms(off, model=model)] == ["contrastive"]
    semi = losses.model_copy(update={"semi_supervised_weight": 0.5})
    with pytest.raises(ValueError, match="n_datasets"):
        build_terms(semi, model=model)
    (head,) = [t for t in build_terms(semi, model=model, n_datasets=3) if isinstance(t, SemiSupervised)]
    assert head.head.weight.shape == (3, model.encoder.d_model)
    objective = PretrainObjective(model, build_terms(losses, model=model))
    assert objective.views == ["input", "corrected"] and objective.term_state() == {}


def test_a_mapping_of_unknown_terms_is_refused():
    with pytest.raises(ValueError, match="unknown objective term"):
        PretrainObjective(tiny(), {"mae": 1.0, "nope": 0.5})
    assert [t.name for t in PretrainObjective(tiny(), {"mae": 1.0, "contrastive": 0.0}).terms] == ["mae"]


# ----------------------------------------------------------------------------- a new term
def test_a_new_term_alone_gets_only_its_view_in_one_call():
    batch = pretrain_batch()
    b = batch["values"].shape[0]
    model = tiny()
    calls = spy_encoder(model)
    term = ProbeTerm(1.0)
    total, logged = PretrainObjective(model, [term])(batch)
    (cat,) = calls
    assert cat["values"].shape[0] == b  # one view: the clean one
    assert torch.equal(cat["values"], batch["clean_values"]) and torch.equal(
        cat["level"], batch["clean_level"]
    )
    assert torch.equal(cat["mask"], batch["mask"]) and torch.equal(cat["wavelengths"], batch["wavelengths"])
    assert set(term.seen[0]) == {"clean"}
    assert set(logged) == {"probe_term", "probe_term_part", "total"}  # parts logged, not weighted
    assert total.item() == pytest.approx(logged["probe_term"].item())


def test_a_new_term_shares_the_one_call_with_the_others():
    batch = pretrain_batch()
    b = batch["values"].shape[0]
    model = tiny()
    calls = spy_encoder(model)
    term = ProbeTerm(0.5)
    objective = PretrainObjective(model, [Reconstruction(1.0), term])
    assert objective.views == ["input", "clean"]
    total, logged = objective(batch)
    (cat,) = calls  # one call for the two views
    assert cat["values"].shape[0] == 2 * b
    assert torch.equal(cat["values"][:b], batch["values"]) and torch.equal(
        cat["values"][b:], batch["clean_values"]
    )
    clean = term.seen[0]["clean"]
    # the rows handed to the term are the clean view's own encoding, as if encoded alone
    alone = model.forward_encoder({**batch, "values": batch["clean_values"], "level": batch["clean_level"]})
    torch.testing.assert_close(clean.embedding, alone.embedding, atol=1e-5, rtol=1e-5)
    assert total.item() == pytest.approx((logged["mae"] + 0.5 * logged["probe_term"]).item(), rel=1e-6)
    assert logged["mae"].item() == pytest.approx(model(batch)[0].item(), rel=1e-5)


def test_clean_view_differs_from_input_so_the_view_check_is_not_vacuous():
    batch = pretrain_batch()
    assert not torch.equal(batch["clean_values"][batch["valid"]], batch["values"][batch["valid"]])


# ----------------------------------------------------------------------------- a term's EMA teacher
def test_an_ema_teacher_follows_the_student_is_not_optimised_and_is_saved():
    batch = pretrain_batch()
    model = tiny().train()
    term = TeacherTerm(1.0, model)
    objective = PretrainObjective(model, [Reconstruction(1.0), term])
    teacher_params = list(term.teacher.parameters())
    assert teacher_params and not any(p.requires_grad for p in teacher_params)

    groups = param_groups(objective, 0.05)
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert not in_groups & {id(p) for p in teacher_params}
    assert in_groups == {id(p) for p in model.parameters() if p.requires_grad}

    optimizer = torch.optim.AdamW(groups, lr=1e-2)
    old = [p.detach().clone() for p in teacher_params]
    total, logged = objective(batch)
    assert logged["teacher_term"].item() > 0.5
    total.backward()
    assert all(p.grad is None for p in teacher_params)
    optimizer.step()
    student = [p.detach().clone() for p in model.encoder.parameters()]
    moved = sum(not torch.equal(s, o) for s, o in zip(student, old, strict=True))
    assert moved > len(old) // 2  # the step moved the student away from its copy
    objective.after_step()
    for t, o, s in zip(teacher_params, old, student, strict=True):
        torch.testing.assert_close(t.detach(), 0.9 * o + 0.1 * s, atol=1e-6, rtol=0)

    state = {k: v.clone() for k, v in objective.term_state().items()}
    teacher_keys = {f"1.teacher.{k}" for k in term.teacher.state_dict()}
    assert teacher_keys == set(state)
    for k, v in term.teacher.state_dict().items():
        assert torch.equal(state[f"1.teacher.{k}"], v)

    fresh_model = tiny(seed=1)
    fresh = PretrainObjective(fresh_model, [Reconstruction(1.0), TeacherTerm(1.0, fresh_model)])
    assert not torch.equal(fresh.terms[1].teacher.state_dict()[k], state[f"1.teacher.{k}"])
    fresh.terms.load_state_dict(state)  # as --resume does (vitnirs.train.loop.restore)
    for k, v in fresh.terms[1].teacher.state_dict().items():
        assert torch.equal(v, state[f"1.teacher.{k}"]), k


# ----------------------------------------------------------------------------- the reconstruction target
def test_reconstruction_target_defaults_to_the_tokens_own_content():
    batch = pretrain_batch()
    model = tiny()
    out = model.forward_encoder(batch)
    default = model.reconstruction_loss(out)
    assert default.item() == pytest.approx(model(batch)[0].item(), rel=1e-6)
    assert torch.equal(model.reconstruction_loss(out, target=out.input.content), default)
    shifted = model.reconstruction_loss(out, target=out.input.content + 1.0)
    assert shifted.item() > default.item() + 0.1
    clean = model.forward_encoder({**batch, "values": batch["clean_values"], "level": batch["clean_level"]})
    assert model.reconstruction_loss(out, target=clean.input.content).item() != pytest.approx(default.item())
    # only the masked tokens are targets: changing the visible ones changes nothing
    visible = out.input.valid & ~out.input.masked
    other = torch.where(visible[..., None], out.input.content + 5.0, out.input.content)
    assert torch.equal(model.reconstruction_loss(out, target=other), default)


# ----------------------------------------------------------------------------- the clean target (mae_clean)
def test_the_clean_target_ignores_the_views_nuisance():
    from vitnirs.train.objectives.clean_reconstruction import CleanReconstruction, clean_content

    batch = pretrain_batch()
    model = tiny()
    out = model.forward_encoder(batch)
    target = clean_content(model, out, batch)
    # the clean content on the input's tokens is the tokenizer's content of the clean view
    clean = model.forward_encoder({**batch, "values": batch["clean_values"], "level": batch["clean_level"]})
    torch.testing.assert_close(target, clean.input.content, atol=1e-6, rtol=1e-6)
    # a stronger nuisance on the input view moves the input's own content, never the clean target
    drift = torch.linspace(0, 3, batch["values"].shape[1]).expand_as(batch["values"])
    drifted = {**batch, "values": torch.where(batch["valid"], batch["values"] + drift, 0.0)}
    out2 = model.forward_encoder(drifted)
    assert not torch.allclose(out2.input.content, out.input.content, atol=1e-3)
    torch.testing.assert_close(clean_content(model, out2, drifted), target, atol=1e-6, rtol=0)
    # the term's loss is masked prediction against that target; with no nuisance it is today's mae
    term = PretrainObjective(model, [CleanReconstruction(1.0)])
    _, logged = term(batch)
    assert logged["mae_clean"].item() == pytest.approx(
        model.reconstruction_loss(out, target=target).item(), rel=1e-5
    )
    same = {**batch, "clean_values": batch["values"], "clean_level": batch["level"]}
    _, logged_same = term(same)
    assert logged_same["mae_clean"].item() == pytest.approx(model(batch)[0].item(), rel=1e-5)
