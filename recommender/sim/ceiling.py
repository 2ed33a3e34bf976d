"""The known-model ceiling of a world: greedy Bayesian search that knows the user's model.

A simulator knows each simulated person exactly, so it can say what a search could reach
that knew everything but the taste: the user's typical dwell, lift, interest curve, noise,
flicks and walk-aways, and the world's distribution of tastes. Its hypotheses are the
user's own taste among ``HYPOTHESES - 1`` others drawn from the same world (same kind of
taste, same corpus); its posterior weighs them by the exact likelihood of each dwell (a
Student-t on log dwell, so that flicks and walk-aways are outliers, as they are), and it
shows, batch after batch, the unseen items of highest posterior-expected dwell over the
whole corpus: greedy, no store, no look-ahead. Capture is reported against the same
oracle as the policies'. What it does not know is satiation (the world's dwell ``satiation``):
it models dwell as a function of taste alone.

A drifting taste is two tastes and a switch time. The search knows when the taste changes
(that is the user's model) but not what it changes to: the taste after the switch is drawn
independently of the one before, so it keeps one posterior per phase, each over its own
phase's hypotheses, and views before the switch say nothing about the taste after it.
(Hypotheses as (before, after) pairs would let identifying the first taste name the
second: the search would know the future.)

So "fraction of ceiling" reads: of what was reachable by search, knowing the person's
model, how much did the policy reach.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from recommender.sim.corpus import APPEAL_SD, SyntheticCorpus
from recommender.sim.runner import Impressions, Trace
from recommender.sim.users import SimUser, Taste

HYPOTHESES = 200  # the true taste among this many (199 from the world's own prior)
STUDENT_DF = 3.0  # residual tails: flicks and walk-aways are a few log units off
EULER = 0.5772156649


class KnownModel:
    """Expected log dwell of every item under each hypothesis, for one user's dwell model."""

    def __init__(self, user: SimUser, corpus: SyntheticCorpus,
                 hypotheses: Sequence[tuple[list[Taste], list[Taste]]]) -> None:
        self.user = user
        x = corpus.vectors
        phases = 2 if user.switch_at is not None else 1
        # Every hypothesis' taste vectors in one matrix product (not one pass per taste).
        tastes = [ts for before, after in hypotheses for ts in before + after]
        column = {id(ts): j for j, ts in enumerate(tastes)}
        sims = x @ np.stack([ts.vector for ts in tastes]).T
        # (phase, items, hypotheses): log of the expected dwell (taste only)
        self.mu = np.empty((phases, len(x), len(hypotheses)), np.float32)
        for h, (before, after) in enumerate(hypotheses):
            for ph in range(phases):
                interest = np.max(np.stack([
                    ts.weight * user.interest_curve((sims[:, column[id(ts)]] - ts.median)
                                                    / (ts.threshold - ts.median))
                    for ts in (after if ph == 1 else before)]), axis=0)
                self.mu[ph, :, h] = math.log(user.base_ms) + user.gain * interest
        # Location and scale of log dwell around log(expected dwell), by the user's law.
        if user.weibull_shape is not None:
            k = user.weibull_shape
            self.offset = -math.lgamma(1.0 + 1.0 / k) - EULER / k
            spread = math.pi / (k * math.sqrt(6.0))
        else:
            self.offset = -0.5 * user.sigma**2
            spread = user.sigma
        self.scale = math.hypot(spread, APPEAL_SD * user.appeal_weight)
        # One posterior per phase over that phase's hypotheses: (phase, hypotheses).
        self.log_odds = np.zeros((phases, len(hypotheses)))

    def phase(self, t: int) -> int:
        s = self.user.switch_at
        return 1 if s is not None and t >= s else 0

    def add(self, item: int, t: int, dwell_ms: float) -> None:
        ph = self.phase(t)
        r = (math.log(max(dwell_ms, 1.0)) - self.offset - self.mu[ph, item]) / self.scale
        self.log_odds[ph] -= 0.5 * (STUDENT_DF + 1) * np.log1p(r * r / STUDENT_DF)

    def probs(self, t: int) -> NDArray[np.float64]:
        """The posterior over the hypotheses of the taste at impression ``t``."""
        log_odds = self.log_odds[self.phase(t)]
        p = np.exp(log_odds - log_odds.max())
        return np.asarray(p / p.sum())

    def value(self, t: int) -> NDArray[np.float64]:
        p = self.probs(t)
        keep = np.flatnonzero(p >= 1e-5)
        return np.asarray(np.exp(self.mu[self.phase(t)][:, keep].astype(np.float64)) @ p[keep])


def hypotheses_for(user: SimUser, others: Sequence[SimUser]
                   ) -> list[tuple[list[Taste], list[Taste]]]:
    """The user's own (tastes, after) first, then the others' (another run of the world's
    user generator: the world's prior over tastes of this kind). ``KnownModel`` weighs the
    two phases' hypotheses apart: the pairs are only a way to hold both lists."""
    own = [(user.tastes, user.after or user.tastes)]
    return own + [(o.tastes, o.after or o.tastes) for o in others[:HYPOTHESES - 1]]


def ceiling_run(corpus: SyntheticCorpus, user: SimUser, index: int, others: Sequence[SimUser],
                *, horizon: int, batch: int, seed: int) -> Trace:
    """The known-model greedy search's run of ``user``, as a ``Trace`` named ``ceiling``.

    ``seed`` is the user's run seed: the dwell draws are those a policy's run meets."""
    shown = Impressions(user, corpus, np.random.default_rng([seed, index, 7]), horizon)
    model = KnownModel(user, corpus, hypotheses_for(user, others))
    seen = np.zeros(len(corpus.ids), dtype=bool)
    for t0 in range(0, horizon, batch):
        value = np.where(seen, -np.inf, model.value(t0))
        n = min(batch, horizon - t0)
        top = np.argpartition(-value, n)[:n]
        picks = [int(i) for i in top[np.argsort(-value[top])]]
        seen[picks] = True
        for k, i in enumerate(picks):
            model.add(i, t0 + k, shown.view(i))
    return Trace(policy="ceiling", model=user.model, user=index, expected=shown.expected,
                 baseline=shown.baseline, first_like=shown.first_like, repeats=0)
