#!/usr/bin/python3
"""Reference values for ab_compare_queries' statistics (CompareQueryLatencies in
src/core/comparison.hpp), from SciPy.

Run with Debian's interpreter (python3-scipy, python3-numpy):
    /usr/bin/python3 test/reference/query_comparison_reference.py
It rewrites test/reference/query_comparison_reference.tsv, which
test/unit/query_comparison_test.cpp reads (make unit). The seed is fixed: the same SciPy
gives the same file.

One case per line, tab-separated, as in statistics_reference.tsv: "query_comparison",
the confidence level, min_sample_size, the number m of query ids; per query id the
moments of ln(latency) of its successful calls in branch a and in branch b (count, mean,
m2 = sum of squared deviations from the mean); then per query id the expected
relative_change, p_value, adjusted_p_value and is_significant ("none" is NULL).

The formulas, as the README states them:
  relative_change = exp(mean_log_b - mean_log_a) - 1          (both branches have a call)
  p_value         = Welch's t-test on the log latencies        (scipy.stats.ttest_ind_from_stats)
  adjusted        = Holm across the query ids with a p-value   (written out below)
  is_significant  = adjusted < 1 - confidence_level and both counts >= min_sample_size
"""
import math
import os

import numpy as np
from scipy import stats

CASES = 240
LEVELS = (0.9, 0.95, 0.99)
FLOOR_MS, CEILING_MS = 1e-3, 1e6  # QuerySample::Of: latencies clamped, the floor before the log
rng = np.random.default_rng(20261129)
rows = []


def fmt(x):
    if x is None:
        return "none"
    if isinstance(x, (bool, np.bool_)):
        return "1" if x else "0"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return repr(float(x))


def holm(p):
    """Holm-Bonferroni: sorted ascending, the k-th (from 0) of m times (m - k), made
    monotone by a running maximum, capped at 1; returned in the given order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])  # stable: ties keep their order
    adjusted = [0.0] * m
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        adjusted[i] = running
    return adjusted


def latencies(n, median_ms, sigma, constant):
    """n latencies in ms, log-normal, measured to the microsecond, clamped like the hooks."""
    if constant:
        x = np.full(n, round(median_ms, 3))
    else:
        x = np.round(median_ms * np.exp(rng.normal(0, sigma, n)), 3)
    return np.clip(x, 0, CEILING_MS)


def log_moments(x):
    if len(x) == 0:
        return 0, 0.0, 0.0
    logs = np.log(np.maximum(x, FLOOR_MS))
    if np.all(logs == logs[0]):
        return len(x), float(logs[0]), 0.0  # what Welford gives for constant data: exactly 0
    mean = math.fsum(logs) / len(logs)
    return len(x), mean, math.fsum((logs - mean) ** 2)


def count():
    kind = rng.integers(10)
    if kind == 0:
        return int(rng.integers(0, 3))  # no, one or two calls
    return int(round(math.exp(rng.uniform(math.log(2), math.log(5000)))))


def welch_p(a, b):
    (n_a, mean_a, m2_a), (n_b, mean_b, m2_b) = a, b
    if n_a < 2 or n_b < 2:
        return None
    var_a, var_b = m2_a / (n_a - 1), m2_b / (n_b - 1)
    if not var_a / n_a + var_b / n_b > 0:
        return None  # both constant: no standard error, no test
    return float(stats.ttest_ind_from_stats(mean_b, math.sqrt(var_b), n_b, mean_a, math.sqrt(var_a), n_a,
                                            equal_var=False).pvalue)


emitted = 0
while emitted < CASES:
    level = LEVELS[rng.integers(3)]
    min_sample_size = int(rng.choice([1, 2, 30, 100, 1000]))
    m = int(rng.integers(1, 9))
    moments = []
    for q in range(m):
        median = math.exp(rng.uniform(math.log(0.005), math.log(20000)))
        sigma = math.exp(rng.uniform(math.log(0.02), math.log(2.5)))
        # No change, a small one (about the noise of the mean of logs), or a large one.
        effect = (0.0, rng.normal(0, 3) * sigma / math.sqrt(500), rng.normal(0, 1))[rng.integers(3)]
        constant = rng.random() < 0.05
        a = log_moments(latencies(count(), median, sigma, constant))
        b = log_moments(latencies(count(), median * math.exp(effect), sigma * rng.uniform(0.7, 1.4),
                                  constant and rng.random() < 0.5))
        moments.append((a, b))
    p = [welch_p(a, b) for a, b in moments]
    present = [x for x in p if x is not None]
    adjusted_present = holm(present)
    alpha = 1 - level
    # A decision that rounding could flip is no test of the formula: draw again.
    if any(abs(x - alpha) < 1e-9 * alpha for x in adjusted_present):
        continue
    adjusted, it = [], iter(adjusted_present)
    for x in p:
        adjusted.append(next(it) if x is not None else None)
    expected = []
    for (a, b), x, adj in zip(moments, p, adjusted):
        relative = math.expm1(b[1] - a[1]) if a[0] > 0 and b[0] > 0 else None
        significant = adj is not None and adj < alpha and a[0] >= min_sample_size and b[0] >= min_sample_size
        expected += [relative, x, adj, significant]
    fields = [level, min_sample_size, m] + [v for a, b in moments for v in a + b] + expected
    rows.append("\t".join(["query_comparison"] + [fmt(v) for v in fields]))
    emitted += 1

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "query_comparison_reference.tsv")
with open(path, "w") as out:
    out.write("# Generated by test/reference/query_comparison_reference.py; do not edit.\n")
    out.write("\n".join(rows) + "\n")
print(f"{len(rows)} cases written to {path}")
