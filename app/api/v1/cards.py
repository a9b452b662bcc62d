"""A served model's card as the API shows it: the training card plus what serving knows."""

from __future__ import annotations

from convlens.app.api.v1.schemas import CutsCard, LayerRow, ModelCard, TrainingSummary, VerdictCard
from convlens.app.core.served_model import ServedModel
from convlens.app.core.verdict import Judge
from convlens.app.reading.cuts import CutScorer


def model_card(model: ServedModel) -> ModelCard:
    card = model.card
    training = card.get("training", {})
    metrics = card.get("metrics", {})
    return ModelCard(
        name=model.name,
        version=model.version,
        description=card.get("description"),
        created=card.get("created"),
        architecture=model.reference.config.to_dict(),
        layers=[
            LayerRow(name=r.name, type=r.type, output_shape=r.output_shape, parameters=r.parameters)
            for r in model.layers
        ],
        parameters=sum(r.parameters for r in model.layers),
        feature_layers=model.feature_layers,
        filter_layers=model.filter_layers,
        test_accuracy=metrics.get("test_accuracy"),
        per_class_accuracy=metrics.get("per_class_accuracy"),
        confusion_matrix=metrics.get("confusion_matrix"),
        weights_sha256=card["weights"]["sha256"],
        serving_precision=model.precision,
        training=TrainingSummary(
            **{k: training.get(k) for k in ("command", "seed", "epochs", "best_epoch", "seconds")},
            history=training.get("history", []),
        ),
        data=card.get("data", {}),
        environment=card.get("environment", {}),
    )


def verdict_card(judge: Judge) -> VerdictCard:
    card = judge.card
    return VerdictCard(
        version=judge.version,
        architecture=judge.head.config.to_dict(),
        parameters=sum(p.numel() for p in judge.head.parameters()),
        trunk=judge.card["trunk"],
        classes=list(card["verdict"]["classes"]),
        threshold=judge.threshold,
        validation=card.get("validation", {}),
        benchmarks=card.get("benchmarks", {}),
        weights_sha256=card["weights"]["sha256"],
    )


def cuts_card(cuts: CutScorer) -> CutsCard:
    card = cuts.card
    return CutsCard(
        version=cuts.version,
        architecture=cuts.network.config.to_dict(),
        parameters=sum(p.numel() for p in cuts.network.parameters()),
        classes=list(card["cuts"]["classes"]),
        validation=card.get("validation", {}),
        weights_sha256=card["weights"]["sha256"],
    )
