"""The published accuracy rows: every one belongs to a registry model, fractions where fractions, nothing invented."""

from __future__ import annotations

import pytest

from service.models.published import DATASETS, PUBLISHED, Boxes, PublishedFigure
from service.models.registry import REGISTRY


def test_every_row_belongs_to_a_registry_model() -> None:
    assert set(PUBLISHED) <= set(REGISTRY)


def test_models_with_a_published_accuracy_have_rows_and_the_others_none() -> None:
    for name, entry in REGISTRY.items():
        assert bool(entry.published) == bool(entry.accuracy), name


@pytest.mark.parametrize("figure", [f for rows in PUBLISHED.values() for f in rows], ids=str)
def test_fractions_are_fractions(figure: PublishedFigure) -> None:
    if figure.metric != "NME":
        assert 0.0 < figure.value < 1.0
        assert figure.ar is None or 0.0 < figure.ar < 1.0
        assert all(0.0 < v < 1.0 for k, v in figure.details if k != "EPE")
    assert figure.detector_ap is None or figure.boxes is Boxes.DETECTOR
    assert figure.dataset in DATASETS


def test_rows_read_from_model_zoo() -> None:
    body7 = REGISTRY["rtmpose-m"].published[0]
    assert (body7.dataset, body7.metric, body7.value) == ("coco", "AP", 0.749)
    assert (body7.detector_ap, body7.flip_test) == (0.564, True)
    assert body7.ar is None  # model_zoo.md gives no AR for this row
    coco_only = REGISTRY["rtmpose-m-coco"].published[0]
    assert (coco_only.value, coco_only.ar, coco_only.boxes) == (0.746, None, None)
    crowd = REGISTRY["rtmpose-m-crowdpose"].published[0].to_dict()
    assert crowd["details"] == {"AP easy": 0.799, "AP medium": 0.719, "AP hard": 0.582}
    whole = REGISTRY["rtmw-l"].published[0].to_dict()
    assert (whole["value"], whole["ar"], whole["details"]["hand AP"]) == (0.660, 0.746, 0.598)


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        PublishedFigure("imagenet", "AP", 0.5)
