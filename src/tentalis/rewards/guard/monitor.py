"""``RewardHackingGuard``: feed it rollouts as training consumes them, get verdicts.

The first ``warmup`` observations form the baseline: completion-length mean and spread,
the reward histogram, and — where results carry both — the cheap-scorer/judge gap and
rank correlation. After that, every ``check_every`` observations (once ``window`` of them
have arrived since the baseline) it compares the latest ``window`` against the baseline:

* ``length_drift``   — the window's mean length in baseline σ (``length_z_threshold``);
* ``reward_kl``      — KL(baseline ‖ window) of the reward histograms, above
  ``kl_threshold`` and not falling for ``kl_rising_checks`` checks in a row;
* ``scorer_divergence`` — the cheap scorer drifting away from the judge: the mean absolute
  gap grew by ``gap_threshold``, or Spearman ρ dropped by ``rho_drop_threshold``.

``hard_stop_signals`` signals at once make a HARD_STOP; fewer make a WARNING, and a
WARNING that persists ``escalate_after`` checks becomes a HARD_STOP. The guard holds no
I/O: what to do about a verdict is the caller's business (see
:mod:`tentalis.training.promotion`). Formulas: :mod:`tentalis.rewards.guard.stats`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise

from tentalis.config.guard import GuardConfig
from tentalis.rewards.guard.observation import (
    GuardLevel,
    GuardVerdict,
    Observation,
    SignalReading,
)
from tentalis.rewards.guard.stats import (
    histogram,
    kl_divergence,
    length_z,
    mean_abs_gap,
    mean_std,
    spearman,
)


@dataclass(frozen=True)
class Baseline:
    """What the warm-up looked like."""

    length_mean: float
    length_std: float
    rewards: list[float]
    gap: float | None  # mean |cheap − judge|, None with fewer than min_pairs pairs
    rho: float | None


class RewardHackingGuard:
    """Pure monitor of training-time signals; see the module docstring."""

    def __init__(self, config: GuardConfig | None = None) -> None:
        self.config = config or GuardConfig()
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next ``warmup`` observations form a new baseline."""
        cfg = self.config
        self._warm: list[Observation] = []
        self.baseline: Baseline | None = None
        self._recent: deque[Observation] = deque(maxlen=cfg.window)
        self._pairs: deque[tuple[float, float]] = deque(maxlen=cfg.window)
        self._since_baseline = 0
        self._since_check = 0
        self._kl: deque[float] = deque(maxlen=cfg.kl_rising_checks)
        self.observations = 0
        self.checks = 0
        self.streak = 0
        self.last: GuardVerdict | None = None

    def observe(self, obs: Observation) -> GuardVerdict | None:
        """Take one observation; return the verdict when this observation completed a check."""
        if not self.config.enabled:
            return None
        self.observations += 1
        if self.baseline is None:
            self._warm.append(obs)
            if len(self._warm) >= self.config.warmup:
                self.baseline = self._make_baseline(self._warm)
                self._warm = []
            return None
        self._recent.append(obs)
        if obs.paired:
            self._pairs.append((obs.cheap, obs.judge))  # type: ignore[arg-type]
        self._since_baseline += 1
        self._since_check += 1
        if self._since_baseline < self.config.window or self._since_check < self.config.check_every:
            return None
        self._since_check = 0
        return self.check()

    def _make_baseline(self, obs: list[Observation]) -> Baseline:
        lm, ls = mean_std([o.length for o in obs])
        pairs = [(o.cheap, o.judge) for o in obs if o.paired]
        gap = rho = None
        if len(pairs) >= self.config.min_pairs:
            cheap, judge = [p[0] for p in pairs], [p[1] for p in pairs]
            gap, rho = mean_abs_gap(cheap, judge), spearman(cheap, judge)  # type: ignore[arg-type]
        return Baseline(lm, ls, [o.reward for o in obs], gap, rho)

    def check(self) -> GuardVerdict:
        """Compare the current window with the baseline (normally called by ``observe``)."""
        if self.baseline is None or not self._recent:
            raise RuntimeError("the guard cannot check before its warm-up is complete")
        cfg = self.config
        signals = (self._length(self.baseline), self._reward_kl(self.baseline),
                   self._divergence(self.baseline))
        fired = sum(s.fired for s in signals)
        self.checks += 1
        self.streak = self.streak + 1 if fired else 0
        if fired >= cfg.hard_stop_signals or (
            fired and cfg.escalate_after and self.streak >= cfg.escalate_after
        ):
            level = GuardLevel.HARD_STOP
        elif fired:
            level = GuardLevel.WARNING
        else:
            level = GuardLevel.OK
        self.last = GuardVerdict(level, self.checks, self.observations, signals, self.streak)
        return self.last

    # --- signals -------------------------------------------------------------------------
    def _length(self, b: Baseline) -> SignalReading:
        lengths = [o.length for o in self._recent]
        z = length_z(lengths, b.length_mean, b.length_std)
        mean, _ = mean_std(lengths)
        t = self.config.length_z_threshold
        return SignalReading(
            "length_drift", z > t, z, t,
            f"mean completion length {mean:.1f} tokens is {z:.2f}σ from the warm-up's "
            f"{b.length_mean:.1f} (σ {b.length_std:.1f}; threshold {t}σ)",
            {"window_mean": mean, "baseline_mean": b.length_mean, "baseline_std": b.length_std},
        )

    def _reward_kl(self, b: Baseline) -> SignalReading:
        cfg = self.config
        p = histogram(b.rewards, cfg.kl_bins, cfg.kl_smoothing)
        window = [o.reward for o in self._recent]
        kl = kl_divergence(p, histogram(window, cfg.kl_bins, cfg.kl_smoothing))
        self._kl.append(kl)
        hist = list(self._kl)
        rising = len(hist) == cfg.kl_rising_checks and all(
            later >= earlier for earlier, later in pairwise(hist)
        )
        fired = rising and min(hist) > cfg.kl_threshold
        reward_mean, _ = mean_std(window)
        base_mean, _ = mean_std(b.rewards)
        return SignalReading(
            "reward_kl", fired, kl, cfg.kl_threshold,
            f"KL(warm-up ‖ current rewards) {kl:.3f} nats, over the last {len(hist)} checks "
            f"{', '.join(f'{v:.3f}' for v in hist)} (threshold {cfg.kl_threshold}, rising "
            f"for {cfg.kl_rising_checks}); mean reward {base_mean:.2f} → {reward_mean:.2f}",
            {"reward_mean": reward_mean, "baseline_reward_mean": base_mean},
        )

    def _divergence(self, b: Baseline) -> SignalReading:
        cfg = self.config
        t = cfg.gap_threshold
        if b.gap is None or len(self._pairs) < cfg.min_pairs:
            have = len(self._pairs)
            return SignalReading(
                "scorer_divergence", False, None, t,
                f"not judged: needs {cfg.min_pairs} rollouts scored by both the cheap scorer "
                f"and '{cfg.judge_component}' (window has {have})",
            )
        cheap, judge = [p[0] for p in self._pairs], [p[1] for p in self._pairs]
        gap, rho = mean_abs_gap(cheap, judge), spearman(cheap, judge)
        rise = gap - b.gap
        drop = None if rho is None or b.rho is None else b.rho - rho
        fired = rise > t or (drop is not None and drop > cfg.rho_drop_threshold)
        numbers = {"gap": gap, "baseline_gap": b.gap}
        rho_text = ""
        if drop is not None:
            numbers |= {"rho": rho, "baseline_rho": b.rho, "rho_drop": drop}  # type: ignore[dict-item]
            rho_text = (f"; Spearman ρ {b.rho:.2f} → {rho:.2f} "
                        f"(drop threshold {cfg.rho_drop_threshold})")
        return SignalReading(
            "scorer_divergence", fired, rise, t,
            f"mean |cheap − judge| {b.gap:.3f} → {gap:.3f} (rise threshold {t}){rho_text}",
            numbers,
        )
