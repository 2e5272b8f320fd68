#!/usr/bin/python3
"""Reference values for src/core/statistics, sequential and sample_size, from SciPy.

Run with Debian's interpreter (python3-scipy, python3-numpy):
    /usr/bin/python3 test/reference/statistics_reference.py
It rewrites test/reference/statistics_reference.tsv, which test/unit/statistics_test.cpp
reads. The seed is fixed: the same SciPy gives the same file.

One case per line, tab-separated: the function, its inputs, then the expected outputs.
Lists are comma-separated; "none" is an absent value (std::nullopt). Floats are
written with repr(), which reads back to the same double.
"""
import math
import os

import numpy as np
from scipy import integrate, optimize, special, stats

CASES = 200
rng = np.random.default_rng(20240611)
rows = []


def fmt(x):
    if x is None:
        return "none"
    if isinstance(x, (list, tuple)):
        return ",".join(fmt(v) for v in x)
    if isinstance(x, (bool, np.bool_)):
        return "1" if x else "0"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return repr(float(x))


def emit(name, *values):
    rows.append("\t".join([name] + [fmt(v) for v in values]))


def log_uniform_int(lo, hi):
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def conversions_pair(max_trials=10**7):
    """Two branches with rates from anywhere in (0, 1), small rates, or nearly equal."""
    n_a = log_uniform_int(1, max_trials)
    n_b = log_uniform_int(1, max_trials) if rng.random() < 0.5 else max(1, int(n_a * rng.uniform(0.8, 1.2)))
    kind = rng.integers(4)
    if kind == 0:
        rate_a = rng.uniform(0, 1)
    else:
        rate_a = math.exp(rng.uniform(math.log(1e-4), math.log(0.5)))
    if kind == 1:
        rate_b = rng.uniform(0, 1)
    else:  # the same true rate, or nearly: p-values spread over (0, 1)
        rate_b = rate_a * (1 + rng.normal(0, 0.02)) if kind == 2 else rate_a
    rate_b = min(max(rate_b, 0.0), 1.0)
    return int(rng.binomial(n_a, rate_a)), n_a, int(rng.binomial(n_b, rate_b)), n_b


# --- two proportions: pooled z-test, Wald interval ------------------------------------
def proportions(s_a, n_a, s_b, n_b, level):
    rate_a, rate_b = s_a / n_a, s_b / n_b
    diff = rate_b - rate_a
    pooled = (s_a + s_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z, p = (diff / se0, 2 * stats.norm.sf(abs(diff / se0))) if se0 > 0 else (0.0, 1.0)
    if 0 < pooled < 1 and 0 < s_a + s_b and (n_a - s_a) + (n_b - s_b) > 0:
        # Independent check: the pooled z-test is Pearson's chi-square test of the 2x2 table.
        chi2, p_chi2, _, _ = stats.chi2_contingency([[s_a, n_a - s_a], [s_b, n_b - s_b]], correction=False)
        assert abs(p_chi2 - p) <= 1e-9 * p + 1e-300, (s_a, n_a, s_b, n_b, p, p_chi2)
    se = math.sqrt(rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b)
    half = -stats.norm.ppf((1 - level) / 2) * se
    lift = diff / rate_a if rate_a > 0 else None
    return rate_a, rate_b, diff, z, p, diff - half, diff + half, lift


LEVELS = [0.9, 0.95, 0.99]
for _ in range(CASES):
    s_a, n_a, s_b, n_b = conversions_pair()
    level = LEVELS[rng.integers(3)] if rng.random() < 0.7 else rng.uniform(0.5, 0.999)
    emit("proportions", s_a, n_a, s_b, n_b, level, *proportions(s_a, n_a, s_b, n_b, level))


# --- P(p_b > p_a) with Beta(1 + s, 1 + f) posteriors ------------------------------------
def miller_exact(aa, ba, ab, bb):
    """Evan Miller's closed form term by term with betaln: an independent check of quad."""
    i = np.arange(int(ab))
    terms = special.betaln(aa + i, ba + bb) - np.log(bb + i) - special.betaln(1 + i, bb) - special.betaln(aa, ba)
    return float(np.exp(terms).sum())


def prob_b_beats_a(s_a, n_a, s_b, n_b):
    aa, ba, ab, bb = 1 + s_a, 1 + n_a - s_a, 1 + s_b, 1 + n_b - s_b
    dist_a, dist_b = stats.beta(aa, ba), stats.beta(ab, bb)
    tail = 1e-15
    # Only where both posteriors live is integrated; above, cdf_a is 1 and b's survival is exact.
    lo = max(dist_a.ppf(tail), dist_b.ppf(tail))
    hi = min(dist_a.isf(tail), dist_b.isf(tail))
    above = dist_b.sf(max(lo, hi))
    if lo >= hi:
        return above
    # Break points at the modes help quad find narrow peaks.
    points = sorted(x for x in (dist_a.mean(), dist_b.mean()) if lo < x < hi)
    inside, err = integrate.quad(lambda x: dist_b.pdf(x) * dist_a.cdf(x), lo, hi, points=points or None,
                                 epsabs=1e-13, epsrel=1e-11, limit=500)
    assert err < 1e-9, (s_a, n_a, s_b, n_b, err)
    return inside + above


for case in range(CASES):
    if case < 40:  # small counts, where the posteriors are wide and skewed
        n_a, n_b = int(rng.integers(0, 50)), int(rng.integers(0, 50))
        s_a, s_b = int(rng.integers(0, n_a + 1)), int(rng.integers(0, n_b + 1))
    else:
        s_a, n_a, s_b, n_b = conversions_pair()
    p = prob_b_beats_a(s_a, n_a, s_b, n_b)
    if min(1 + s_b, 1 + n_b - s_b) <= 3000 and max(n_a, n_b) <= 10**6:
        # lgamma-based terms lose ~1e-16 * lgamma(n) each: good to 1e-8 at these sizes.
        q = miller_exact(1 + s_a, 1 + n_a - s_a, 1 + s_b, 1 + n_b - s_b)
        assert abs(p - q) < 1e-8, (s_a, n_a, s_b, n_b, p, q)
    emit("prob_b_beats_a", s_a, n_a, s_b, n_b, p)


# --- mSPRT always-valid p-value ----------------------------------------------------------
def sequential(s_a, n_a, s_b, n_b, tau2):
    rate_a, rate_b = s_a / n_a, s_b / n_b
    v = rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b
    if v <= 0:
        return 1.0
    theta = rate_b - rate_a
    log_lambda = 0.5 * math.log(v / (v + tau2)) + tau2 * theta**2 / (2 * v * (v + tau2))
    return min(1.0, math.exp(-log_lambda))


for _ in range(CASES):
    s_a, n_a, s_b, n_b = conversions_pair(10**6)
    tau2 = 1e-4 if rng.random() < 0.3 else math.exp(rng.uniform(math.log(1e-6), math.log(1e-1)))
    emit("sequential", s_a, n_a, s_b, n_b, tau2, sequential(s_a, n_a, s_b, n_b, tau2))


# --- Welch's t-test ----------------------------------------------------------------------
def t_critical(q, df):
    """The upper q-quantile of Student's t, solved on t.sf to full precision: SciPy's
    t.isf (Cephes stdtri) is only good to ~1e-9 for a fractional df."""
    guess = stats.t.isf(q, df)
    return optimize.brentq(lambda x: stats.t.sf(x, df) - q, guess * (1 - 1e-6), guess * (1 + 1e-6),
                           xtol=1e-15 * guess, rtol=1e-15)


def welch(n_a, mean_a, var_a, n_b, mean_b, var_b, level):
    t, p = stats.ttest_ind_from_stats(mean_b, math.sqrt(var_b), n_b, mean_a, math.sqrt(var_a), n_a, equal_var=False)
    sa, sb = var_a / n_a, var_b / n_b
    df = (sa + sb) ** 2 / (sa**2 / (n_a - 1) + sb**2 / (n_b - 1))
    se = math.sqrt(sa + sb)
    diff = mean_b - mean_a
    crit = t_critical((1 - level) / 2, df)
    lift = diff / mean_a if mean_a != 0 else None
    return diff, se, t, df, p, diff - crit * se, diff + crit * se, lift


def random_moments():
    n = log_uniform_int(2, 10**7)
    mean = rng.normal(0, 10) if rng.random() < 0.3 else math.exp(rng.uniform(math.log(0.01), math.log(1000)))
    sd = mean * math.exp(rng.uniform(math.log(0.05), math.log(20))) if mean > 0 else math.exp(rng.uniform(-3, 3))
    return n, mean, abs(sd) ** 2


for case in range(CASES):
    n_a, mean_a, var_a = random_moments()
    if rng.random() < 0.5:  # nearly equal branches give p-values that are neither 0 nor 1
        n_b, mean_b, var_b = (max(2, int(n_a * rng.uniform(0.5, 1.5))),
                              mean_a + rng.normal(0, 3) * math.sqrt(var_a / n_a), var_a * rng.uniform(0.5, 2))
    else:
        n_b, mean_b, var_b = random_moments()
    if case % 20 == 0:
        var_b = 0.0  # one constant branch: Welch still works
    level = LEVELS[rng.integers(3)]
    emit("welch", n_a, mean_a, var_a, n_b, mean_b, var_b, level,
         *welch(n_a, mean_a, var_a, n_b, mean_b, var_b, level))

# From sums of generated data: the exact moments come from the data, the C++ sees only sums.
emitted = 0
while emitted < CASES:
    samples = []
    shape, scale = rng.uniform(0.5, 5), math.exp(rng.uniform(math.log(0.1), math.log(1000)))
    integer = rng.random() < 0.2  # integer-valued metrics such as item counts
    for branch in range(2):
        n = log_uniform_int(2, 3000)
        if branch == 1:  # the same distribution, or a slightly shifted one
            scale *= 1 + (rng.normal(0, 0.05) if rng.random() < 0.5 else 0)
        x = rng.gamma(shape, scale, size=n)
        samples.append(np.round(x) if integer else x)
    a, b = samples
    if a.var(ddof=1) == 0 and b.var(ddof=1) == 0:
        continue
    level = LEVELS[rng.integers(3)]
    sums = []
    for x in (a, b):
        sums += [len(x), math.fsum(x), math.fsum(x * x)]
    emit("welch_sums", *sums, level, a.mean(), a.var(ddof=1), b.mean(), b.var(ddof=1),
         *welch(len(a), a.mean(), a.var(ddof=1), len(b), b.mean(), b.var(ddof=1), level))
    emitted += 1


# --- Holm-Bonferroni ---------------------------------------------------------------------
def holm(p):
    """R's p.adjust(method = "holm"): pmin(1, cummax((m - i + 1) * p[o]))[ro]."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    result = np.empty(m)
    result[order] = adjusted_sorted
    return list(result)


for case in range(CASES):
    m = int(rng.integers(1, 16))
    p = list(rng.uniform(0, 1, m) ** rng.uniform(1, 6))
    if case % 5 == 0 and m > 1:  # ties
        p[int(rng.integers(m))] = p[0]
    if case % 7 == 0:
        p[int(rng.integers(m))] = float(rng.choice([0.0, 1.0]))
    emit("holm", p, holm(p))


# --- sample ratio mismatch ---------------------------------------------------------------
emitted = 0
while emitted < CASES:
    case = emitted
    k = int(rng.integers(2, 7))
    cuts = np.sort(rng.integers(0, 10001, k - 1))
    shares = np.diff(np.concatenate([[0], cuts, [10000]])).astype(int)
    if shares.max() == 10000:
        continue
    total = log_uniform_int(10, 10**7)
    drift = shares / 10000 * (1 + rng.normal(0, 0.01 if case % 2 else 0.0, k))
    drift = np.where(shares > 0, np.maximum(drift, 0), 0)
    observed = rng.multinomial(total, drift / drift.sum())
    if observed.sum() == 0:
        continue
    positive = shares > 0
    expected = observed.sum() * shares[positive] / 10000
    chi2, p = stats.chisquare(observed[positive], expected)
    emit("srm", list(observed), list(shares), chi2, int(positive.sum()) - 1, p, p < 0.001)
    emitted += 1


# --- sample size -------------------------------------------------------------------------
emitted = 0
while emitted < CASES:
    p1 = math.exp(rng.uniform(math.log(0.001), math.log(0.95)))
    mde = math.exp(rng.uniform(math.log(0.001), math.log(0.3))) * (1 if rng.random() < 0.7 else -1)
    p2 = p1 + mde
    if not 0 < p2 < 1:
        continue
    alpha = [0.01, 0.05, 0.1][rng.integers(3)] if rng.random() < 0.6 else rng.uniform(0.001, 0.3)
    power = [0.8, 0.9][rng.integers(2)] if rng.random() < 0.6 else rng.uniform(0.5, 0.99)
    pbar = (p1 + p2) / 2
    bracket = (stats.norm.isf(alpha / 2) * math.sqrt(2 * pbar * (1 - pbar)) +
               stats.norm.ppf(power) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
    exact = bracket**2 / (p2 - p1) ** 2
    if abs(exact - round(exact)) < 1e-6 * exact:
        continue  # too close to an integer for ceil to be decided by rounding error
    emit("sample_size", p1, mde, alpha, power, math.ceil(exact))
    emitted += 1

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "statistics_reference.tsv")
with open(path, "w") as out:
    out.write("# Generated by test/reference/statistics_reference.py; do not edit.\n")
    out.write("\n".join(rows) + "\n")
print(f"{len(rows)} cases written to {path}")
