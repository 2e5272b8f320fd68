#!/usr/bin/python3
"""Independent reference for ab_analyze and ab_analyze_over_time (issue #16), from SciPy.

Run with Debian's interpreter (python3-numpy, python3-scipy):
    /usr/bin/python3 test/reference/outcome_reference.py OUTDIR --anchor EPOCH [--seed N] [--aa N]

It builds random data sets from the seed (experiments, an assignment log, an orders and a
sessions table, the metrics over them), computes the expected output of every analysis from
the per-user values with NumPy/SciPy, and writes into OUTDIR:
    experiments.tsv       name, branches, confidence_level, min_sample_size, started_at (unix microseconds)
    assignments.csv       experiment, user_id, branch, assigned_at           (COPY ... CSV)
    orders.csv            user_id, created_at, amount (numeric, 2 decimals, empty = NULL), items (int)
                          (and an empty table refunds (user_id, refunded_at, amount): all values 0)
    sessions.csv          uid (bigint), ts (timestamp WITHOUT time zone, local time of TimeZone = TZ), seconds
    metrics.json          the metric definitions, as named arguments of ab_define_metric / ab_define_ratio_metric
    expected.json         {"analyze": [...], "over_time": [...]}: the expected rows
    aa_assignments.csv, aa_facts.csv, aa_expected.json   the CUPED A/A simulation (--aa experiments)
t/014_outcome_analysis.pl loads them into a node and compares every column.

--anchor is a unix time (seconds) at least 45 days before the test's now(): every fact and
assignment lies within 40 days after it (except a few facts 10 years later, "in the future",
that no analysis may count), so the results do not depend on when the test runs. The
specification is the README's "Analyse outcomes you already store"; each formula is
written once below, in the function named after it.
"""
import argparse
import csv
import json
import math
import os

import numpy as np
from scipy import optimize, stats

US = 1_000_000          # microseconds per second
HOUR = 3600 * US
DAY = 24 * HOUR
TZ = 'Etc/GMT-3'        # the session TimeZone of the analysis: UTC+3, no daylight saving
TZ_OFFSET = 3 * HOUR    # local time = UTC + 3 h, used for the timestamp-without-time-zone column
MIXING_VARIANCE = 1e-4  # abtest.sequential_mixing_variance (its default)


# ----------------------------------------------------------------------------------------
# Statistics: each formula once
# ----------------------------------------------------------------------------------------
def t_critical(q, df):
    """Upper q-quantile of Student's t. stats.t.ppf is the starting point; SciPy's t.isf/ppf
    (Cephes stdtri) is only good to ~1e-9 for a fractional df, so the root of t.sf is polished
    with brentq (as test/reference/statistics_reference.py does)."""
    guess = -stats.t.ppf(q, df)
    return optimize.brentq(lambda x: stats.t.sf(x, df) - q, guess * (1 - 1e-6), guess * (1 + 1e-6),
                           xtol=1e-15 * guess, rtol=1e-15)


def z_critical(level):
    """z_{(1+level)/2}: the normal quantile of a two-sided interval."""
    return stats.norm.ppf((1 + level) / 2)


def holm(p):
    """Holm's step-down adjustment (R's p.adjust(method = "holm")); None stays None and is not
    counted among the m hypotheses."""
    idx = [i for i, v in enumerate(p) if v is not None]
    out = [None] * len(p)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: p[i])):  # stable: ties keep their order
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def msprt_p(diff, v, tau2):
    """One look of the mixture SPRT: Lambda = sqrt(V/(V+tau2)) exp(tau2 diff^2 / (2V(V+tau2))),
    p = min(1, 1/Lambda). In logs, so that a large Lambda gives 0 instead of overflowing."""
    log_lambda = 0.5 * math.log(v / (v + tau2)) + tau2 * diff * diff / (2 * v * (v + tau2))
    return min(1.0, math.exp(-log_lambda))


def sample_var(a):
    return float(np.var(a, ddof=1)) if len(a) >= 2 else None


def compare_means(yc, yb, level):
    """Welch comparison of one challenger's per-user values yb against the control's yc.
    Returns the comparison columns of ab_analyze (without the Holm ones)."""
    nc, nb = len(yc), len(yb)
    out = dict.fromkeys(['diff', 'diff_ci_low', 'diff_ci_high', 'relative_lift', 'lift_ci_low', 'lift_ci_high',
                         'p_value', 'prob_beats_control', 'sequential_p_value'])
    if nc == 0 or nb == 0:
        return out
    mc, mb = float(np.mean(yc)), float(np.mean(yb))
    out['diff'] = diff = mb - mc
    if mc != 0:
        out['relative_lift'] = diff / mc
    if nc < 2 or nb < 2:
        return out
    vc, vb = sample_var(yc), sample_var(yb)
    if mc != 0:
        # Delta method: var(lift) = s_b^2/(n_b m_c^2) + m_b^2 s_c^2/(n_c m_c^4), normal quantile.
        half = z_critical(level) * math.sqrt(vb / (nb * mc**2) + mb**2 * vc / (nc * mc**4))
        out['lift_ci_low'], out['lift_ci_high'] = diff / mc - half, diff / mc + half
    if vc == 0 and vb == 0:
        return out
    sc, sb = vc / nc, vb / nb
    v = sc + sb
    df = v**2 / (sc**2 / (nc - 1) + sb**2 / (nb - 1))  # Welch-Satterthwaite
    half = t_critical((1 - level) / 2, df) * math.sqrt(v)
    out['diff_ci_low'], out['diff_ci_high'] = diff - half, diff + half
    out['p_value'] = float(stats.ttest_ind(yb, yc, equal_var=False).pvalue)
    out['prob_beats_control'] = float(stats.norm.cdf(diff / math.sqrt(v)))
    out['sequential_p_value'] = msprt_p(diff, v, MIXING_VARIANCE)
    return out


UNSTABLE = 'unstable'  # in expected.json: ill-conditioned, only "NULL or finite (no NaN)" is checked


def ratio_stats(n_vals, d_vals):
    """R = sum N / sum D and the delta-method var(R) = (var N - 2R cov(N,D) + R^2 var D) / (n mean(D)^2)
    of one branch, and whether var(R) is ill-conditioned. (None, None, False) when mean(D) = 0 or n < 2.

    When every user's N is R times their D (e.g. a single user with a denominator), var(R) is 0 and
    the formula, evaluated from sufficient statistics, is cancellation noise of either sign: such a
    branch's stddev (and intervals/tests that rest on it alone) is marked unstable instead of compared."""
    n = len(n_vals)
    if n < 2 or float(np.mean(d_vals)) == 0:
        return None, None, False
    mean_d = float(np.mean(d_vals))
    r = float(np.sum(n_vals)) / float(np.sum(d_vals))
    cov = np.cov(n_vals, d_vals, ddof=1)
    var_r = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * mean_d**2)
    # Independent check: the same variance is the variance of the linearised per-user values.
    lin = (np.asarray(n_vals) - r * np.asarray(d_vals)) / mean_d
    var_lin = np.var(lin, ddof=1) / n
    terms = (cov[0, 0] + 2 * abs(r * cov[0, 1]) + r * r * cov[1, 1]) / (n * mean_d**2)
    assert abs(var_r - var_lin) <= 1e-9 * abs(var_lin) + 1e-13 * terms, (var_r, var_lin)
    return r, float(var_lin), bool(var_lin <= 1e-9 * terms)


def compare_ratios(c, b, level):
    """z-test of R_b - R_c for a ratio metric; c and b are ratio_stats() of the control and the branch."""
    out = dict.fromkeys(['diff', 'diff_ci_low', 'diff_ci_high', 'relative_lift', 'lift_ci_low', 'lift_ci_high',
                         'p_value', 'prob_beats_control', 'sequential_p_value'])
    (rc, var_c, unstable_c), (rb, var_b, unstable_b) = c, b
    if rc is None or rb is None:
        return out
    out['diff'] = diff = rb - rc
    z = z_critical(level)
    if unstable_c and unstable_b:  # the whole comparison rests on cancellation noise
        return dict.fromkeys(out, UNSTABLE)
    if rc != 0:
        out['relative_lift'] = diff / rc
        half = z * math.sqrt(var_b / rc**2 + rb**2 * var_c / rc**4)
        out['lift_ci_low'], out['lift_ci_high'] = diff / rc - half, diff / rc + half
    v = var_b + var_c
    if v == 0:
        return out
    se = math.sqrt(v)
    out['diff_ci_low'], out['diff_ci_high'] = diff - z * se, diff + z * se
    out['p_value'] = float(2 * stats.norm.sf(abs(diff) / se))
    out['prob_beats_control'] = float(stats.norm.cdf(diff / se))
    out['sequential_p_value'] = msprt_p(diff, v, MIXING_VARIANCE)
    return out


def cuped_adjust(ys, xs):
    """CUPED over all users of all branches: theta = cov(X,Y)/var(X) (n-1; 0 when var X = 0),
    Y' = Y - theta (X - mean X). Returns the adjusted values per branch and
    variance_reduction = 1 - var(Y')/var(Y) (None when var Y = 0)."""
    y, x = np.concatenate(ys), np.concatenate(xs)
    var_x = np.var(x, ddof=1) if len(x) >= 2 else 0.0
    theta = np.cov(x, y, ddof=1)[0, 1] / var_x if var_x > 0 else 0.0
    mean_x = np.mean(x)
    adjusted = [yb - theta * (xb - mean_x) for yb, xb in zip(ys, xs)]
    var_y = np.var(y, ddof=1) if len(y) >= 2 else 0.0
    reduction = float(1 - np.var(np.concatenate(adjusted), ddof=1) / var_y) if var_y > 0 else None
    # Independent check from sufficient statistics: var(Y') = var Y - 2 theta cov + theta^2 var X.
    if var_y > 0:
        c = np.cov(x, y, ddof=1)
        alt = 1 - (c[1, 1] - 2 * theta * c[0, 1] + theta**2 * c[0, 0]) / c[1, 1]
        assert abs(alt - reduction) < 1e-9, (alt, reduction)
    return adjusted, reduction


def analyze(branches, values, level, min_n, xs=None, ratio=None):
    """The rows of ab_analyze. values: per branch the per-user Y (or, for a ratio, (N, D));
    xs: per branch the CUPED covariates, or None."""
    reduction = None
    if xs is not None:
        values, reduction = cuped_adjust(values, xs)
    rows = []
    for i, name in enumerate(branches):
        if ratio:
            n = len(values[i][0])
            r, var_r, unstable = ratio_stats(*values[i])
            mean = r
            if r is None and n >= 1 and float(np.mean(values[i][1])) != 0:
                mean = float(np.sum(values[i][0])) / float(np.sum(values[i][1]))
            stddev = UNSTABLE if unstable else math.sqrt(n * var_r) if var_r is not None else None
        else:
            n = len(values[i])
            mean = float(np.mean(values[i])) if n else None
            stddev = float(np.std(values[i], ddof=1)) if n >= 2 else None
        row = {'branch': name, 'users': n, 'mean': mean, 'stddev': stddev}
        if i > 0:
            if ratio:
                row.update(compare_ratios(ratio_stats(*values[0]), ratio_stats(*values[i]), level))
                # diff and the lift are point estimates: with fewer than 2 users (no var(R)) they
                # still exist whenever both R do.
                control_mean = rows[0]['mean']
                if row.get('diff') is None and control_mean is not None and mean is not None:
                    row['diff'] = mean - control_mean
                    if control_mean != 0:
                        row['relative_lift'] = row['diff'] / control_mean
            else:
                row.update(compare_means(values[0], values[i], level))
        rows.append(row)
    p_values = [r.get('p_value') for r in rows[1:]]
    adjusted = [UNSTABLE] * len(p_values) if UNSTABLE in p_values else holm(p_values)
    for r, a in zip(rows[1:], adjusted):
        if a == UNSTABLE:
            r['adjusted_p_value'] = r['is_significant'] = UNSTABLE
            continue
        r['adjusted_p_value'] = a
        # Decided on the adjusted p-value, and only with enough users on both sides.
        r['is_significant'] = bool(a is not None and a < 1 - level
                                   and r['users'] >= min_n and rows[0]['users'] >= min_n)
    for r in rows:
        r['variance_reduction'] = reduction
    for r in rows:  # every column present; the control's comparison columns NULL
        for k in COLUMNS:
            r.setdefault(k, None)
    return [{k: r[k] for k in COLUMNS} for r in rows]


COLUMNS = ['branch', 'users', 'mean', 'stddev', 'diff', 'diff_ci_low', 'diff_ci_high', 'relative_lift',
           'lift_ci_low', 'lift_ci_high', 'p_value', 'adjusted_p_value', 'is_significant', 'prob_beats_control',
           'sequential_p_value', 'variance_reduction']
OVER_TIME_COLUMNS = ['branch', 'users', 'mean', 'diff', 'diff_ci_low', 'diff_ci_high']


# ----------------------------------------------------------------------------------------
# Per-user values
# ----------------------------------------------------------------------------------------
class Facts:
    """A fact table as arrays: user (int), t (unix microseconds, UTC), and per value column
    (integer values, not NULL, scale): the value is the integer divided by scale (cents: 100)."""

    def __init__(self, user, t, columns):
        self.user, self.t = np.asarray(user, np.int64), np.asarray(t, np.int64)
        self.columns = {name: (np.asarray(v, np.int64), np.asarray(has, bool), scale)
                        for name, (v, has, scale) in columns.items()}


def per_user(facts, metric, users, assigned, lo_off, hi_off, until, future):
    """One value per user (aggregation of the facts with assigned+lo_off <= t < assigned+hi_off,
    t < until, t < now), before the cap, and whether the user has >= 1 fact row.
    lo_off/hi_off None: unbounded on that side."""
    users = np.asarray(users, np.int64)  # sorted
    pos = np.minimum(np.searchsorted(users, facts.user), max(len(users) - 1, 0))
    pos = np.where((len(users) > 0) & (users[pos] == facts.user), pos, -1) if len(users) else np.full(len(facts.user), -1)
    a = np.where(pos >= 0, np.asarray(assigned, np.int64)[np.maximum(pos, 0)], 0)
    mask = (pos >= 0) & (facts.t < future) & (facts.t < until)
    if lo_off is not None:
        mask &= facts.t >= a + lo_off
    if hi_off is not None:
        mask &= facts.t < a + hi_off
    n = len(users)
    rows = np.bincount(pos[mask], minlength=n)
    agg = metric['aggregation']
    column = metric.get('value_column')
    if column is not None:
        value, has_value, scale = facts.columns[column]
    if agg == 'count':
        y = rows.astype(float)
    elif agg == 'any':
        y = (rows > 0).astype(float)
    elif agg == 'sum':
        if column is None:
            y = rows.astype(float)
        else:  # integer sums are exact in float64 here (< 2^53); NULL values add nothing
            vm = mask & has_value
            y = np.bincount(pos[vm], weights=value[vm].astype(float), minlength=n) / scale
    elif agg == 'max':
        vm = mask & has_value
        best = np.full(n, np.iinfo(np.int64).min)
        np.maximum.at(best, pos[vm], value[vm])
        y = np.where(best == np.iinfo(np.int64).min, 0, best) / scale
    else:
        raise ValueError(agg)
    return y, rows > 0


def metric_cap(metric, y_all, has_fact):
    """The cap of a metric: its fixed cap, or percentile_cont(p) (numpy 'linear') of the
    uncapped values of the users with >= 1 fact row; None: no cap."""
    if metric.get('cap') is not None:
        return metric['cap']
    p = metric.get('cap_percentile')
    if p is not None and has_fact.any():
        return float(np.percentile(y_all[has_fact], p * 100, method='linear'))
    return None


def simple_values(ds, metric, exp, until=None, cap=None, cuped_window=None):
    """Per branch: the capped per-user values Y (and, with cuped_window, X). until: the boundary
    of ab_analyze_over_time (users assigned and facts before it); cap: that of the whole analysis
    (over time the cap is computed at now and kept)."""
    facts = ds['tables'][metric['source']]
    users, assigned, branch = exp['users'], exp['assigned'], exp['branch']
    if until is not None:
        keep = assigned < until
        users, assigned, branch = users[keep], assigned[keep], branch[keep]
    window = metric.get('window_us')
    y, has_fact = per_user(facts, metric, users, assigned, 0, window, until if until is not None else FAR, ds['future'])
    if until is None:
        cap = metric_cap(metric, y, has_fact)
    if cap is not None:
        y = np.minimum(y, cap)
    ys = [y[branch == b] for b in range(len(exp['branches']))]
    if cuped_window is None:
        return ys, None, cap
    x, _ = per_user(facts, metric, users, assigned, -cuped_window, 0, FAR, ds['future'])
    if cap is not None:
        x = np.minimum(x, cap)
    return ys, [x[branch == b] for b in range(len(exp['branches']))], cap


FAR = np.iinfo(np.int64).max


def metric_values(ds, name, exp, until=None, caps=None, cuped_window=None):
    """Per-branch values of a simple or ratio metric; caps: name -> cap at now (over time)."""
    metric = ds['metrics'][name]
    if metric['kind'] == 'ratio':
        num, _, cap_n = simple_values(ds, ds['metrics'][metric['numerator']], exp, until,
                                      caps and caps[metric['numerator']])
        den, _, cap_d = simple_values(ds, ds['metrics'][metric['denominator']], exp, until,
                                      caps and caps[metric['denominator']])
        return list(zip(num, den)), None, {metric['numerator']: cap_n, metric['denominator']: cap_d}
    ys, xs, cap = simple_values(ds, metric, exp, until, caps and caps[name], cuped_window)
    return ys, xs, {name: cap}


def over_time(ds, name, exp, step_us):
    """ab_analyze_over_time: boundaries started_at + k*step (k = 1, 2, ...) while there is data
    to come, and the final state (= any boundary after the last fact, and the one at now())."""
    metric = ds['metrics'][name]
    ratio = metric['kind'] == 'ratio'
    _, _, caps = metric_values(ds, name, exp)

    def rows_at(until):
        values, _, _ = metric_values(ds, name, exp, until, caps)
        full = analyze(exp['branches'], values, exp['confidence_level'], exp['min_sample_size'], ratio=ratio)
        return [{k: r[k] for k in OVER_TIME_COLUMNS} for r in full]

    steps = []
    k = 1
    while exp['started_at'] + (k - 1) * step_us <= ds['data_end']:
        steps.append(rows_at(exp['started_at'] + k * step_us))
        k += 1
    return {'experiment': exp['name'], 'metric': name, 'step_us': step_us, 'started_at_us': exp['started_at'],
            'steps': steps, 'final': rows_at(None)}


# ----------------------------------------------------------------------------------------
# Data sets
# ----------------------------------------------------------------------------------------
def iso(us, offset=0, tz=True):
    """Microseconds since the epoch as PostgreSQL input: timestamptz in UTC, or (tz=False) the
    local time `offset` later, for a timestamp-without-time-zone column. Vectorised."""
    t = np.asarray(us, np.int64) + offset
    text = np.char.replace(np.datetime_as_string(t.astype('datetime64[us]'), unit='us'), 'T', ' ')
    return np.char.add(text, '+00') if tz else text


def cents(c):
    """An integer number of cents as exact decimal text (the per-user sums are exact too)."""
    c = int(c)
    return ('-' if c < 0 else '') + f'{abs(c) // 100}.{abs(c) % 100:02d}'


def build(seed, anchor_s):
    rng = np.random.default_rng(seed)
    A = anchor_s * US
    data_end = A + 40 * DAY - 1  # every fact and assignment before it (the future ones aside)
    future = A + 3650 * DAY      # facts at or after it are after now(): never counted
    pool = np.arange(100001, 106001)  # user ids; '100001'.. as text, 100001.. as bigint
    buyer = rng.random(len(pool)) < 0.55                           # many users never order: zeros
    rate = np.where(buyer, rng.lognormal(-0.3, 1.0, len(pool)), 0.0)  # orders per week
    scale = rng.lognormal(3.2, 0.7, len(pool))                        # typical order amount
    srate = rng.lognormal(0.0, 0.8, len(pool))                        # sessions per day
    slen = rng.lognormal(5.0, 1.0, len(pool))                         # typical session seconds

    specs = [  # name, branches, share, users, confidence, min_sample_size, start offset, effects
        ('checkout', ['control', 'treatment'], [0.5, 0.5], 3000, 0.95, 100, 2 * HOUR + 13 * 60 * US + 417,
         {1: (1.4, 1.2, 1.0)}),  # (order rate, amount, session rate) multipliers
        ('pricing', ['control', 'low', 'high'], [0.34, 0.33, 0.33], 2400, 0.90, 100, DAY + 5 * HOUR + 3,
         {2: (0.6, 1.0, 1.3)}),
        ('tiny', ['control', 'treatment'], [0.5, 0.5], 60, 0.99, 1000, 3 * DAY,
         {1: (3.0, 1.5, 1.0)}),
        # Degenerate on purpose: a control of one user, challengers of three.
        ('sparse', ['control', 'a', 'b'], [1 / 7, 3 / 7, 3 / 7], 7, 0.95, 1, 4 * DAY, {}),
    ]
    experiments = []
    for name, branches, share, n, level, min_n, offset, effects in specs:
        started = A + offset
        users = np.sort(rng.choice(pool, n, replace=False))
        assigned = started + rng.integers(0, 12 * DAY, n)
        # Some assignments exactly on a day / 12 h boundary of ab_analyze_over_time (assigned_at < t_k).
        on_edge = rng.random(n) < 0.02
        assigned[on_edge] = started + rng.integers(1, 12, on_edge.sum()) * (DAY // 2)
        assigned[0] = started
        branch = rng.choice(len(branches), n, p=share)
        branch[:len(branches)] = np.arange(len(branches))
        if name == 'sparse':
            branch = np.array([0, 1, 1, 1, 2, 2, 2])
        experiments.append({'name': name, 'branches': branches, 'confidence_level': level,
                            'min_sample_size': min_n, 'started_at': int(started), 'users': users,
                            'assigned': assigned, 'branch': branch, 'effects': effects})

    # Per user: the experiments (assigned_at, multipliers) that change their behaviour afterwards.
    changes = {}
    for e in experiments:
        for u, a, b in zip(e['users'], e['assigned'], e['branch']):
            changes.setdefault(int(u), []).append((int(a), e['effects'].get(int(b), (1.0, 1.0, 1.0))))

    def multipliers(u, t):
        m = np.ones((len(t), 3))
        for a, eff in changes.get(u, []):
            m[t >= a] *= eff
        return m

    o_user, o_t, o_amt, o_has, o_items = [], [], [], [], []
    s_user, s_t, s_sec = [], [], []
    start, span = A - 35 * DAY, 75 * DAY - 1
    for i, u in enumerate(pool):
        u = int(u)
        # Orders: a Poisson process over the whole period, thinned/boosted after assignments. The
        # same rate and scale before and after: the pre-period predicts the outcome (CUPED).
        k = rng.poisson(rate[i] * 3.0 * span / (7 * DAY))
        t = start + rng.integers(0, span, k)
        m = multipliers(u, t)
        keep = rng.random(k) < m[:, 0] / 3.0
        t, m = t[keep], m[keep]
        amount = scale[i] * m[:, 1] * rng.lognormal(0, 0.8, len(t))
        tail = rng.random(len(t)) < 0.05                       # heavy tail: Pareto outliers
        amount[tail] *= 1 + rng.pareto(1.5, tail.sum())
        cents = np.maximum(1, np.round(np.minimum(amount, 1e6) * 100)).astype(np.int64)
        o_user += [u] * len(t)
        o_t += list(t)
        o_amt += list(cents)
        o_has += list(rng.random(len(t)) >= 0.02)             # 2% NULL amounts
        o_items += list(1 + rng.poisson(1.5 * m[:, 1], len(t)))
        # Sessions: every user, own rate; durations heavy-tailed integers.
        k = rng.poisson(srate[i] * 3.0 * span / DAY / 4)
        t = start + rng.integers(0, span, k)
        m = multipliers(u, t)
        keep = rng.random(k) < m[:, 2] / 3.0
        t = t[keep]
        s_user += [u] * len(t)
        s_t += list(t)
        s_sec += list(np.minimum(10**6, np.round(slen[i] * rng.lognormal(0, 1.0, len(t)))).astype(np.int64))

    # Facts exactly at the edges: the windows ([assigned, assigned + window)), the CUPED
    # pre-periods ([assigned - cuped_window, assigned)) and the over-time boundaries (t < t_k).
    edges = [0, -1, 1, 3 * DAY - 1, 3 * DAY, 7 * DAY - 1, 7 * DAY, 14 * DAY - 1, 14 * DAY,
             -7 * DAY, -7 * DAY - 1, -14 * DAY, -14 * DAY - 1, -30 * DAY, -30 * DAY - 1]
    for e in experiments:
        for j in rng.choice(len(e['users']), len(e['users']) // 10, replace=False):
            u, a = int(e['users'][j]), int(e['assigned'][j])
            for off in rng.choice(edges, 2, replace=False):
                o_user.append(u); o_t.append(a + int(off)); o_amt.append(int(rng.integers(100, 20000)))
                o_has.append(True); o_items.append(int(rng.integers(1, 4)))
                s_user.append(u); s_t.append(a + int(off)); s_sec.append(int(rng.integers(1, 3000)))
            for step in (DAY, DAY // 2):
                kk = int(rng.integers(1, 30))
                o_user.append(u); o_t.append(e['started_at'] + kk * step); o_amt.append(int(rng.integers(100, 9000)))
                o_has.append(True); o_items.append(2)
                s_user.append(u); s_t.append(e['started_at'] + kk * step); s_sec.append(77)
    # Facts after now() and of users in no experiment: never counted.
    for u in list(pool[:50]) + list(range(900001, 900021)):
        o_user.append(int(u)); o_t.append(future + int(rng.integers(0, DAY))); o_amt.append(123456)
        o_has.append(True); o_items.append(9)
        s_user.append(int(u)); s_t.append(future + int(rng.integers(0, DAY))); s_sec.append(99999)
    for u in range(900001, 900021):
        o_user.append(u); o_t.append(A + 5 * DAY); o_amt.append(5000); o_has.append(True); o_items.append(1)
        s_user.append(u); s_t.append(A + 5 * DAY); s_sec.append(500)
    o_t, s_t = np.array(o_t, np.int64), np.array(s_t, np.int64)
    assert ((o_t < data_end) | (o_t >= future)).all() and ((s_t < data_end) | (s_t >= future)).all()

    tables = {'orders': Facts(o_user, o_t, {'amount': (o_amt, o_has, 100),
                                            'items': (o_items, np.ones(len(o_t), bool), 1)}),
              'sessions': Facts(s_user, s_t, {'seconds': (s_sec, np.ones(len(s_t), bool), 1)}),
              'refunds': Facts([], [], {'amount': ([], [], 100)})}  # empty: every value 0
    raw = {'orders': (o_user, o_t, o_amt, o_has, o_items), 'sessions': (s_user, s_t, s_sec)}
    return {'experiments': experiments, 'tables': tables, 'raw': raw, 'data_end': data_end, 'future': future,
            'metrics': METRICS}


def simple(name, source, user, time, value, aggregation, window_days, cap=None, cap_percentile=None,
           higher_is_better=True):
    return {'kind': 'simple', 'name': name, 'source': source, 'user_column': user, 'time_column': time,
            'value_column': value, 'aggregation': aggregation,
            'window_us': None if window_days is None else window_days * DAY,
            'conversion_window': None if window_days is None else f'{window_days} days',
            'cap': cap, 'cap_percentile': cap_percentile, 'higher_is_better': higher_is_better}


METRICS = {m['name']: m for m in [
    simple('revenue', 'orders', 'user_id', 'created_at', 'amount', 'sum', 7),
    simple('orders', 'orders', 'user_id', 'created_at', None, 'count', 7),
    simple('order_rows', 'orders', 'user_id', 'created_at', 'amount', 'count', 7),  # rows, NULL amounts too
    simple('converted', 'orders', 'user_id', 'created_at', None, 'any', None),      # until now
    simple('biggest_order', 'orders', 'user_id', 'created_at', 'amount', 'max', 14, cap=400.0),
    simple('revenue_p95', 'orders', 'user_id', 'created_at', 'amount', 'sum', 7, cap_percentile=0.95),
    simple('items', 'orders', 'user_id', 'created_at', 'items', 'sum', 7, cap=12.0),
    simple('most_items_p90', 'orders', 'user_id', 'created_at', 'items', 'max', 14, cap_percentile=0.9),
    simple('session_seconds', 'sessions', 'uid', 'ts', 'seconds', 'sum', 3),
    simple('session_count', 'sessions', 'uid', 'ts', None, 'count', 3, higher_is_better=False),
    simple('refunds', 'refunds', 'user_id', 'refunded_at', 'amount', 'sum', 7, higher_is_better=False),
    {'kind': 'ratio', 'name': 'revenue_per_order', 'numerator': 'revenue', 'denominator': 'orders',
     'higher_is_better': True},
    {'kind': 'ratio', 'name': 'items_per_session', 'numerator': 'items', 'denominator': 'session_count',
     'higher_is_better': True},
]}
CUPED_WINDOWS = {None: 14 * DAY, '7 days': 7 * DAY, '30 days': 30 * DAY}  # None: the default '14 days'


def aa_data(seed, anchor_s, count):
    """The CUPED A/A simulation: `count` experiments of 200 users split 50/50 at random, one
    pre-period fact (a day before assignment) and one in-experiment fact (a day after) per user,
    correlated 0.7, no true effect. Metric aa_value: sum of value, 7 days; CUPED window 14 days."""
    rng = np.random.default_rng(seed + 1)
    A = anchor_s * US
    assign_rows, fact_rows, expected = [], [], []
    rho, sd = 0.7, 3.0
    for e in range(count):
        n = 200
        branch = (rng.random(n) < 0.5).astype(int)
        branch[:2] = [0, 1]
        assigned = A + rng.integers(0, 5 * DAY, n)
        x = np.round(rng.normal(20, sd, n) * 100).astype(np.int64)
        noise = rng.normal(0, sd * math.sqrt(1 - rho**2), n)
        y = np.round((20 + rho * (x / 100 - 20) + noise) * 100).astype(np.int64)
        users = [f'aa{e}_{i}' for i in range(n)]
        name = f'aa{e}'
        at, before, after = iso(assigned), iso(assigned - DAY), iso(assigned + DAY)
        for i in range(n):
            assign_rows.append((name, users[i], ['control', 'treatment'][branch[i]], at[i]))
            fact_rows.append((users[i], before[i], cents(x[i])))
            fact_rows.append((users[i], after[i], cents(y[i])))
        ys = [y[branch == b] / 100 for b in (0, 1)]
        xs = [x[branch == b] / 100 for b in (0, 1)]
        rows = analyze(['control', 'treatment'], ys, 0.95, 100, xs=xs)
        expected.append({'experiment': name, 'p_value': rows[1]['p_value'],
                         'variance_reduction': rows[1]['variance_reduction'], 'diff': rows[1]['diff']})
    return assign_rows, fact_rows, expected


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('outdir')
    ap.add_argument('--anchor', type=int, required=True, help='unix seconds, >= 45 days before now()')
    ap.add_argument('--seed', type=int, default=16)
    ap.add_argument('--aa', type=int, default=1000, help='A/A experiments (0: none)')
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    out = lambda f: os.path.join(args.outdir, f)
    ds = build(args.seed, args.anchor)

    with open(out('experiments.tsv'), 'w') as f:
        for e in ds['experiments']:
            f.write('\t'.join([e['name'], ','.join(e['branches']), repr(e['confidence_level']),
                               str(e['min_sample_size']), str(e['started_at'])]) + '\n')
    with open(out('assignments.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        for e in ds['experiments']:
            for u, a, b in zip(e['users'], iso(e['assigned']), e['branch']):
                w.writerow([e['name'], str(u), e['branches'][b], a])
    o_user, o_t, o_amt, o_has, o_items = ds['raw']['orders']
    with open(out('orders.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        for u, t, c, h, it in zip(o_user, iso(o_t), o_amt, o_has, o_items):
            w.writerow([str(u), t, cents(c) if h else '', int(it)])  # empty: NULL
    s_user, s_t, s_sec = ds['raw']['sessions']
    with open(out('sessions.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        for u, t, s in zip(s_user, iso(s_t, TZ_OFFSET, tz=False), s_sec):
            w.writerow([int(u), t, int(s)])
    metric_args = []
    for m in METRICS.values():
        if m['kind'] == 'ratio':
            metric_args.append({'function': 'ab_define_ratio_metric', 'args': {
                'name': m['name'], 'numerator': m['numerator'], 'denominator': m['denominator'],
                'higher_is_better': m['higher_is_better']}})
        else:
            metric_args.append({'function': 'ab_define_metric', 'args': {k: m[k] for k in (
                'name', 'source', 'user_column', 'time_column', 'value_column', 'aggregation',
                'conversion_window', 'cap', 'cap_percentile', 'higher_is_better')}})
    with open(out('metrics.json'), 'w') as f:
        json.dump({'timezone': TZ, 'mixing_variance': MIXING_VARIANCE, 'metrics': metric_args}, f, indent=1)

    analyses, timelines = [], []
    for e in ds['experiments']:
        for name, m in METRICS.items():
            ratio = m['kind'] == 'ratio'
            values, _, _ = metric_values(ds, name, e)
            analyses.append({'experiment': e['name'], 'metric': name, 'cuped': False, 'cuped_window': None,
                             'rows': analyze(e['branches'], values, e['confidence_level'], e['min_sample_size'],
                                             ratio=ratio)})
            if ratio:
                continue
            for cw in ([None, '7 days', '30 days'] if name in ('revenue', 'orders', 'session_seconds') else [None]):
                ys, xs, _ = metric_values(ds, name, e, cuped_window=CUPED_WINDOWS[cw])
                rows = analyze(e['branches'], ys, e['confidence_level'], e['min_sample_size'], xs=xs)
                check_cuped(ys, xs, rows, e['confidence_level'])
                analyses.append({'experiment': e['name'], 'metric': name, 'cuped': True, 'cuped_window': cw,
                                 'rows': rows})
        for name in ('revenue', 'converted', 'revenue_p95', 'revenue_per_order', 'session_count'):
            timelines.append(dict(over_time(ds, name, e, DAY), step='1 day'))
        timelines.append(dict(over_time(ds, 'orders', e, 12 * HOUR), step='12 hours'))
        timelines.append(dict(over_time(ds, 'items_per_session', e, 12 * HOUR), step='12 hours'))
    with open(out('expected.json'), 'w') as f:
        json.dump({'analyze': analyses, 'over_time': timelines}, f)

    if args.aa:
        assign_rows, fact_rows, expected = aa_data(args.seed, args.anchor, args.aa)
        with open(out('aa_assignments.csv'), 'w', newline='') as f:
            csv.writer(f).writerows(assign_rows)
        with open(out('aa_facts.csv'), 'w', newline='') as f:
            csv.writer(f).writerows(fact_rows)
        with open(out('aa_expected.json'), 'w') as f:
            json.dump(expected, f)


def check_cuped(ys, xs, rows, level):
    """Internal consistency: CUPED's p-value is Welch's test on the adjusted values computed
    the other way round (theta from np.polyfit), and the diff interval's ends give p = 1 - level
    when tested as the null (the interval inverts the test)."""
    y, x = np.concatenate(ys), np.concatenate(xs)
    if np.var(x) == 0 or np.var(y) == 0:
        return
    theta = np.polyfit(x, y, 1)[0]  # least squares slope = cov/var
    adj = [yb - theta * (xb - x.mean()) for yb, xb in zip(ys, xs)]
    for b in range(1, len(ys)):
        r = rows[b]
        if r['p_value'] is None:
            continue
        p = stats.ttest_ind(adj[b], adj[0], equal_var=False).pvalue
        assert math.isclose(p, r['p_value'], rel_tol=1e-6, abs_tol=1e-300), (p, r['p_value'])
        for end in (r['diff_ci_low'], r['diff_ci_high']):
            p_end = stats.ttest_ind(adj[b] - end, adj[0], equal_var=False).pvalue
            assert math.isclose(p_end, 1 - level, rel_tol=1e-7), (p_end, level)

if __name__ == '__main__':
    main()
