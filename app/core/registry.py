"""The named models the service runs, and which one answers when a request names none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from convlens.app.config import Settings
from convlens.app.core.errors import UnknownModel
from convlens.app.core.precision import serving_dtype
from convlens.app.core.served_model import ServedModel
from convlens.app.core.verdict import Judge
from convlens.app.reading.cuts import CutScorer


@dataclass
class ModelRegistry:
    models: dict[str, ServedModel]
    default: str
    judge: Judge | None = None
    cuts: CutScorer | None = None  # None only in registries built by hand (tests)

    @classmethod
    def load(cls, settings: Settings) -> ModelRegistry:
        """Every configured model, the verdict head and the reader's cut network, each
        checked against its card (CheckpointError if not)."""
        models = {
            name: ServedModel.load(name, settings.model_dir(name), settings.precision) for name in settings.models
        }
        dtype = serving_dtype(settings.precision)
        judge = Judge.load(settings.verdict_dir, dtype=dtype) if settings.verdict else None
        for model in models.values():
            model.judge = judge  # one verdict head, run in each model's own batched pass
        return cls(models, settings.default_model, judge, CutScorer.load(settings.cuts_dir))

    def get(self, name: str | None = None) -> ServedModel:
        if name is None:
            return self.models[self.default]
        model = self.models.get(name)
        if model is None:
            raise UnknownModel(f"unknown model {name!r}; choose from {', '.join(self.models)}")
        return model

    @property
    def default_model(self) -> ServedModel:
        return self.models[self.default]

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(self.models.values())

    @property
    def ready(self) -> bool:
        return all(m.ready for m in self)
