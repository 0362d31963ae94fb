"""The alt-profanity-check classifier, evaluated without scikit-learn on the hot path.

alt-profanity-check ships a TF-IDF vectoriser (unigrams, English stop words, l2 norm) and a
CalibratedClassifierCV of linear SVMs with sigmoid calibration. Calling it through scikit-learn
costs milliseconds per message; the same arithmetic over a dict of per-word weights costs a few
microseconds. The weights are read from the package's own model files the first time they are
needed, so the package stays the single source of truth (and no model is downloaded).
"""

from __future__ import annotations

import math
import re
import threading

__all__ = ["OffensiveModel", "get_model"]

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class OffensiveModel:
    def __init__(self) -> None:
        from profanity_check import profanity_check as package  # heavy import: lazy

        vectorizer = package.vectorizer
        model = package.model
        idf = vectorizer.idf_
        calibrated = model.calibrated_classifiers_
        self.members: list[tuple[float, float, float]] = []
        coefs = []
        for member in calibrated:
            estimator = member.estimator
            calibrator = member.calibrators[0]
            self.members.append(
                (float(estimator.intercept_[0]), float(calibrator.a_), float(calibrator.b_))
            )
            coefs.append(estimator.coef_[0])
        # Per word: idf and idf * coef for each ensemble member, so scoring is multiply-add.
        self.weights: dict[str, tuple[float, tuple[float, ...]]] = {}
        for word, index in vectorizer.vocabulary_.items():
            idf_value = float(idf[index])
            self.weights[word] = (idf_value, tuple(idf_value * float(c[index]) for c in coefs))
        self._package_predict = package.predict_prob

    def probability(self, text: str) -> float:
        """Probability that ``text`` is offensive, identical to ``predict_prob([text])[0]``."""
        weights = self.weights
        counts: dict[str, int] = {}
        for token in _TOKEN.findall(text if text.islower() else text.lower()):
            if token in weights:
                counts[token] = counts.get(token, 0) + 1
        members = self.members
        if not counts:
            scores = [intercept for intercept, _, _ in members]
        elif len(members) == 5:
            # The shipped model has five calibrated members: unrolled, no per-word allocation.
            s0 = s1 = s2 = s3 = s4 = norm_sq = 0.0
            for token, count in counts.items():
                idf, (w0, w1, w2, w3, w4) = weights[token]
                value = count * idf
                norm_sq += value * value
                s0 += count * w0
                s1 += count * w1
                s2 += count * w2
                s3 += count * w3
                s4 += count * w4
            norm = math.sqrt(norm_sq)
            scores = [
                acc / norm + m[0] for acc, m in zip((s0, s1, s2, s3, s4), members, strict=False)
            ]
        else:
            sums = [0.0] * len(members)
            norm_sq = 0.0
            for token, count in counts.items():
                idf, weighted = weights[token]
                value = count * idf
                norm_sq += value * value
                sums = [acc + count * w for acc, w in zip(sums, weighted, strict=False)]
            norm = math.sqrt(norm_sq)
            scores = [acc / norm + m[0] for acc, m in zip(sums, members, strict=False)]
        total = 0.0
        for score, (_, a, b) in zip(scores, members, strict=False):
            total += 1.0 / (1.0 + math.exp(a * score + b))
        return total / len(members)


_MODEL: OffensiveModel | None = None
_LOCK = threading.Lock()


def get_model() -> OffensiveModel:
    global _MODEL
    if _MODEL is None:
        with _LOCK:
            if _MODEL is None:
                _MODEL = OffensiveModel()
    return _MODEL
