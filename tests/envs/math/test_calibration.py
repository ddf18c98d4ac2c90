"""The judge-calibration tasks and written solutions of the math environment."""

from __future__ import annotations


async def test_reference_solutions_have_balanced_checkable_labels() -> None:
    from tentalis.envs.math.calibration import calibration_tasks, reference_results
    from tentalis.envs.math.verifier import MathVerifier

    results = reference_results(calibration_tasks(5, level="two_step", seed=3), seed=3)
    verdicts = [await MathVerifier().score(r.task, r) for r in results]
    assert [v.outcome_score for v in verdicts] == [1.0, 0.0] * 5
    for i, v in enumerate(verdicts):
        assert v.step_scores[0] == 0.5  # prose: no ground truth
        assert v.step_scores[1:].count(0.0) == (i % 2)  # exactly the planted slip is wrong
