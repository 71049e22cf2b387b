"""A proportion with its 95% Wilson score interval.

Wilson, not the textbook "p ± 1.96·SE" (Wald): with the few dozen films a site reviews, and
sensitivities near 1, Wald's interval collapses to zero width at 0/n and n/n and leaves [0, 1];
Wilson's stays inside [0, 1] and keeps close to its nominal 95% at small n (Brown, Cai and
DasGupta, 2001). Six lines of arithmetic: no statistics package in the web image for them."""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054


def wilson_interval(successes: int, total: int, z: float = Z95) -> tuple[float, float] | None:
    """(low, high) of successes/total; None when there is nothing to estimate from (total 0)."""
    if total <= 0:
        return None
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    successes: int
    total: int  # the number of films behind the figure

    @property
    def value(self) -> float | None:
        return self.successes / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.successes, self.total)

    @property
    def low(self) -> float | None:
        return self.interval[0] if self.total else None

    @property
    def high(self) -> float | None:
        return self.interval[1] if self.total else None

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high,
                "successes": self.successes, "films": self.total}
