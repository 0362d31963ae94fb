from __future__ import annotations

from vetline.policy.engine.offensive_model import get_model

TEXTS = [
    "you are a fucking idiot",
    "new spring collection available now",
    "shit shit damn",
    "",
    "Our quarterly results are out, thanks to the team!!",
    "I hate you and everything about this stupid company",
]


def test_fast_scorer_matches_the_package_exactly() -> None:
    model = get_model()
    expected = model._package_predict(TEXTS)
    for text, want in zip(TEXTS, expected, strict=False):
        assert abs(model.probability(text) - float(want)) < 1e-9
