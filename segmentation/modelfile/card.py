"""The model card: the keys a shipped model describes itself with, the check that they are plain
values, and :class:`ModelCard`, which prints as a short summary and reads as a dict.

``print(model.model_card)`` shows a screenful (name, network, recipe and training budget, data,
licence, validation and held-out scores against the baseline, held-out sources, size models,
where the commands to retrain are); the long
lists of image names stay out of the printed form and are read as before, e.g.
``card["split"]["validation_ids"]`` and ``card["held_out_groups"]["test_ids"]``. The keys are
described in :mod:`segmentation.modelfile`.
"""

from __future__ import annotations

import textwrap
from typing import Any

#: Keys a model card must have (described in :mod:`segmentation.modelfile`).
MODEL_CARD_KEYS = (
    "name",
    "description",
    "recipe",
    "data",
    "licence",
    "split",
    "validation",
    "baseline",
    "parameters",
    "weights_dtype",
    "training",
    "date",
    "retrain",
)
_PLAIN = (str, int, float, bool, type(None))

_WIDTH = 100
_LABEL = 13  # width of the label column


def _scores(row: dict[str, Any] | None) -> str:
    if not row or "score" not in row:
        return "?"
    text = f"score {row['score']:.3f}"
    return text + (f", F1@0.7 {row['f1_0.7']:.3f}" if "f1_0.7" in row else "")


class ModelCard(dict):
    """A model card (a dict of plain values, see :mod:`segmentation.modelfile`) whose
    ``str()`` and ``repr()`` are a short, readable summary.

    Every dict operation works as on the plain dict it was made from (``card == dict(card)``).
    An empty card prints as a note that the model has none.
    """

    def _recipe(self) -> str:
        training = self.get("training") or {}
        when = " ".join(
            p
            for p in [
                f"trained {self['date']}" if self.get("date") else "",
                f"on {training['machine']}" if training.get("machine") else "",
            ]
            if p
        )
        text = ", ".join(p for p in [str(self.get("recipe") or ""), when] if p)
        budget = [f"{training[k]} {k}" for k in ("epochs", "crops") if training.get(k) is not None]
        if training.get("seconds") is not None:
            budget.append(f"{training['seconds']:.0f} s")
        return text + (": " + ", ".join(budget) if budget else "")

    def _validation(self, dtype: str) -> str:
        validation = self.get("validation") or {}
        if not validation:
            return ""
        split = self.get("split") or {}
        key = dtype if dtype in validation else next(iter(validation))
        text = f"{split['validation_images']} images: " if "validation_images" in split else ""
        text += f"{_scores(validation[key])} ({key})"
        text += "".join(f"; {k} {_scores(v)}" for k, v in validation.items() if k != key)
        baseline = self.get("baseline") or {}
        if "score" in baseline:
            text += f"; {baseline.get('name', 'baseline')} {_scores(baseline)}"
        return text

    def _held_out(self, dtype: str) -> str:
        held = self.get("held_out_groups") or {}
        ours = held.get(dtype) or {}
        if "all" not in ours:
            return ""
        kinds = ", ".join(f"{k} {v['score']:.3f}" for k, v in ours.items() if k != "all")
        text = f"{held.get('images', '?')} images of unseen acquisition groups: "
        text += f"score {ours['all']['score']:.3f}" + (f" ({kinds})" if kinds else "")
        if "all" in (held.get("baseline") or {}):
            name = (self.get("baseline") or {}).get("name", "baseline")
            text += f"; {name} {held['baseline']['all']['score']:.3f}"
        if "all" in (held.get("previous") or {}):
            text += f"; the model it replaced {held['previous']['all']['score']:.3f}"
        return text

    def _sources(self, dtype: str) -> str:
        """Held-out sources (whole labs never trained on): the model, the baseline, the model
        it replaced."""
        parts = []
        for entry in (self.get("held_out_sources") or {}).values():
            ours = entry.get(dtype) or {}
            if "score" not in ours:
                continue
            text = f"{entry.get('title', '?')} {ours['score']:.3f}"
            others = [
                f"{name} {entry[key]['score']:.3f}"
                for key, name in (("baseline", "Otsu"), ("previous", "replaced"))
                if "score" in (entry.get(key) or {})
            ]
            parts.append(text + (f" ({', '.join(others)})" if others else ""))
        return "; ".join(parts)

    def _size_models(self) -> str:
        sizes = self.get("size_models") or {}
        return ", ".join(
            f"{name} (median error {v['cv_median_relative_error']:.0%})"
            for name, v in sizes.items()
            if isinstance(v, dict) and "cv_median_relative_error" in v
        )

    def _route(self, kind: str) -> str:
        route = (self.get("routes") or {}).get(kind) or {}
        if not route:
            return ""
        text = f"a network of its own, seeing {route.get('view', 'rgb')}"
        if route.get("description") == self.get("description"):
            text += ": the same architecture"
        elif route.get("description"):
            text += f": {route['description']}"
        if route.get("init"):
            text += f"; fine-tuned from {route['init']}"
        training = route.get("training") or {}
        budget = [f"{training[k]} {k}" for k in ("crops",) if training.get(k) is not None]
        if training.get("seconds") is not None:
            budget.append(f"{training['seconds']:.0f} s")
        if training.get("machine"):
            budget.append(f"on {training['machine']}")
        return text + (f" ({', '.join(budget)})" if budget else "")

    def _image_names(self) -> str:
        names = []
        ids = (self.get("split") or {}).get("validation_ids")
        if ids:
            names.append(f'card["split"]["validation_ids"] ({len(ids)})')
        ids = (self.get("held_out_groups") or {}).get("test_ids")
        if ids:
            names.append(f'card["held_out_groups"]["test_ids"] ({len(ids)})')
        return ", ".join(names)

    def _lines(self) -> list[tuple[str, str]]:
        """``(label, text)`` rows of the printed form (empty rows left out)."""
        dtype = str(self.get("weights_dtype", "float32"))
        params = self.get("parameters")
        described = "parameters" in str(self.get("description", ""))
        weights = [dtype if "weights_dtype" in self else ""]
        if isinstance(params, int) and not described:
            weights.append(f"{params / 1e6:.2f} M parameters")
        rows = [
            ("recipe", self._recipe()),
            ("weights", ", ".join(w for w in weights if w)),
            ("data", str(self.get("data") or "")),
            ("licence", str(self.get("licence") or "")),
            ("validation", self._validation(dtype)),
            ("held out", self._held_out(dtype)),
            ("sources", self._sources(dtype)),
            ("stained", self._route("stained")),
            ("size models", self._size_models()),
        ]
        retrain = [str(c) for c in self.get("retrain") or []]
        if len(retrain) > 2:  # a chain of commands: where to find them
            retrain = [f"{len(retrain)} commands: card['retrain'], or the recipe's header"]
        rows += [("retrain" if i == 0 else "", c) for i, c in enumerate(retrain)]
        rows.append(("image names", self._image_names()))
        return [(label, text) for label, text in rows if text]

    def __str__(self) -> str:
        if not self:
            return (
                "no model card (models trained with `segmentation train` have none: see the "
                "model's .metrics and .recipe)"
            )
        head = str(self.get("name", "unnamed model"))
        if self.get("description"):
            head += f": {self['description']}"
        out = textwrap.wrap(head, _WIDTH, subsequent_indent=" " * (_LABEL + 2))
        for label, text in self._lines():
            if label in ("retrain", ""):  # commands: one line each, to copy and paste
                out.append(f"  {label:<{_LABEL}}{text}")
                continue
            out += textwrap.wrap(
                text,
                _WIDTH,
                initial_indent=f"  {label:<{_LABEL}}",
                subsequent_indent=" " * (_LABEL + 2),
                break_on_hyphens=False,
                break_long_words=False,
            )
        return "\n".join(out)

    __repr__ = __str__


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"model card key {where}.{key!r} must be a string")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise ValueError(
            f"model card value {where} is a {type(value).__name__}; only str, int, float, bool, "
            "None and lists/dicts of them can be stored (convert tensors and arrays with .tolist() "
            "or float())"
        )


def check_model_card(card: dict[str, Any], *, complete: bool = False) -> dict[str, Any]:
    """Check that ``card`` is a dict of plain values; returns a copy (lists for tuples).

    Args:
        card: the model card (see the module docstring).
        complete: also require every key of :data:`MODEL_CARD_KEYS`.

    Raises:
        TypeError: ``card`` is not a dict. ValueError: a value is not plain, or (``complete``)
            a key is missing.
    """
    if not isinstance(card, dict):
        raise TypeError(f"a model card must be a dict, got {type(card).__name__}")
    _check_plain(card, "model_card")
    if complete:
        missing = [key for key in MODEL_CARD_KEYS if key not in card]
        if missing:
            raise ValueError(
                f"model card lacks the keys {missing}; every card has {MODEL_CARD_KEYS}"
            )

    def copy(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [copy(v) for v in value]
        return value

    return copy(card)
