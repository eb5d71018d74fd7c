"""Judge candidates against the accuracy budget and rank the survivors by latency, then size."""

from __future__ import annotations

from edgecnn.deploy.candidates import PARITY_RULE, Candidate


def judge(candidate: Candidate, max_drop: float) -> Candidate:
    """Mark `candidate` eligible or rejected (with the reason): parity for float rules, then the top-1 budget."""
    if candidate.verdict == "rejected":
        return candidate
    if candidate.drop_points is None:
        return _reject(candidate, "bundle.json has no validation checks")
    if candidate.parity_rule == PARITY_RULE and not candidate.parity_passed:
        return _reject(candidate, "failed probability parity with Keras")
    if candidate.drop_points > max_drop:
        return _reject(candidate, f"top-1 drop {candidate.drop_points:+.2f} pt over the {max_drop} pt budget")
    if candidate.p50_ms is None:
        return _reject(candidate, candidate.reason or "no latency measured")
    candidate.verdict, candidate.reason = "eligible", f"within {max_drop} pt"
    return candidate


def _reject(candidate: Candidate, reason: str) -> Candidate:
    candidate.verdict, candidate.reason = "rejected", reason
    return candidate


def choose(candidates: list[Candidate], max_drop: float) -> Candidate | None:
    """Judge every candidate and mark the fastest eligible one (p50, then smaller file) chosen; None if none."""
    eligible = [judge(candidate, max_drop) for candidate in candidates]
    eligible = [candidate for candidate in eligible if candidate.verdict == "eligible"]
    if not eligible:
        return None
    ranked = sorted(eligible, key=lambda c: (c.p50_ms, c.size_bytes))
    best = ranked[0]
    best.verdict = "chosen"
    best.reason = f"fastest p50 within {max_drop} pt" + (" (smaller of equal p50)" if len(ranked) > 1 and
                                                          ranked[1].p50_ms == best.p50_ms else "")
    for rank, candidate in enumerate(ranked[1:], start=2):
        candidate.reason = f"within {max_drop} pt; rank {rank}, {candidate.p50_ms / best.p50_ms:.2f}x chosen p50"
    return best
