#!/usr/bin/python3
"""Independent reference for the analysis across primaries (README, "More than one server").

Run with Debian's interpreter (python3-numpy, python3-scipy, python3-xxhash):
    /usr/bin/python3 test/reference/merged_reference.py OUTDIR [--seed N]

It draws one experiment's records from the seed -- query outcomes (branch, latency, success)
and events (branch, name, value) -- splits them between two primaries, and writes into OUTDIR:
    queries_east.csv, queries_west.csv   branch, latency_ms, success      (COPY ... CSV)
    events_east.csv, events_west.csv     branch, event_name, value
    expected.json                        what every analysis of ALL the records must give
t/024_merged_analysis.pl records each part on its primary, and compares the analysis of the
merged counters (ab_compare(..., sources) and the others) with expected.json, and with a
third server that recorded everything.

The expected values come from the raw records with NumPy and SciPy (not from sufficient
statistics, so the merge itself is under test): SciPy's Welch test on the values, Pearson's
chi-square test of the 2x2 table for the pooled two-proportion z-test, its goodness-of-fit test
for the sample-ratio check (users assigned by the README's hash formula, computed with
python3-xxhash), NumPy's inverted-CDF percentile (PostgreSQL's percentile_disc) for the
latency percentiles, which the README promises within 2%. Floats are written with repr(), which
reads back to the same double in PostgreSQL.
"""
import argparse
import csv
import json
import math
import os
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hash_vectors import bucket  # noqa: E402  (the README's hash formula, independently)

EXPERIMENT = 'split'
BRANCHES = ['control', 'treatment', 'third']
ALLOCATION = [3334, 3333, 3333]   # basis points: the equal split of three branches
SUCCESS = [0.80, 0.83, 0.79]      # true success rate per branch
LATENCY_LOG_MEAN = [3.0, 2.9, 3.05]
EVENTS = {'purchase': (50.0, 20.0), 'refund': (-5.0, 30.0)}
QUERIES = 30000
EVENT_COUNT = 9000
USERS = 12000                     # u1 .. u12000; east routes those with i % 3 = 0, west the rest
EAST_SHARE = 0.4                  # of the records
LEVEL = 0.95                      # confidence_level (its default)


def two_proportions(s_a, n_a, s_b, n_b):
    """README, Analysis: pooled two-sided z-test (as Pearson's chi-square of the 2x2 table),
    unpooled Wald interval of b - a, lift relative to a."""
    rate_a, rate_b = s_a / n_a, s_b / n_b
    _, p, _, _ = stats.chi2_contingency([[s_a, n_a - s_a], [s_b, n_b - s_b]], correction=False)
    se = math.sqrt(rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b)
    half = stats.norm.ppf((1 + LEVEL) / 2) * se
    diff = rate_b - rate_a
    return {'success_rate_a': rate_a, 'success_rate_b': rate_b, 'success_rate_diff': diff,
            'relative_lift': diff / rate_a, 'ci_low': diff - half, 'ci_high': diff + half, 'p_value': p}


def welch_p(a, b):
    return float(stats.ttest_ind(b, a, equal_var=False).pvalue)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('outdir')
    parser.add_argument('--seed', type=int, default=20261129)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    branch = rng.integers(0, len(BRANCHES), QUERIES)
    latency = np.minimum(np.exp(rng.normal(np.take(LATENCY_LOG_MEAN, branch), 1.0)), 1e6)
    success = rng.random(QUERIES) < np.take(SUCCESS, branch)
    east = rng.random(QUERIES) < EAST_SHARE
    event_branch = rng.integers(0, len(BRANCHES), EVENT_COUNT)
    event_name = rng.choice(list(EVENTS), EVENT_COUNT, p=[0.8, 0.2])
    event_value = np.array([rng.normal(*EVENTS[name]) for name in event_name])
    event_east = rng.random(EVENT_COUNT) < EAST_SHARE

    for part, mask, event_mask in (('east', east, event_east), ('west', ~east, ~event_east)):
        with open(os.path.join(args.outdir, f'queries_{part}.csv'), 'w', newline='') as f:
            writer = csv.writer(f)
            for i in np.flatnonzero(mask):
                writer.writerow([BRANCHES[branch[i]], repr(float(latency[i])), 't' if success[i] else 'f'])
        with open(os.path.join(args.outdir, f'events_{part}.csv'), 'w', newline='') as f:
            writer = csv.writer(f)
            for i in np.flatnonzero(event_mask):
                writer.writerow([BRANCHES[event_branch[i]], event_name[i], repr(float(event_value[i]))])

    expected = {'branch_metrics': {}, 'compare': [], 'events': [], 'compare_event': []}
    for k, name in enumerate(BRANCHES):
        x = latency[branch == k]
        expected['branch_metrics'][name] = {
            'query_count': int(len(x)), 'success_count': int(success[branch == k].sum()),
            'avg_latency_ms': math.fsum(x) / len(x), 'min_latency_ms': float(x.min()),
            'max_latency_ms': float(x.max()),
            # percentile_disc, which the histogram's percentiles are within 2% of
            'p50': float(np.percentile(x, 50, method='inverted_cdf')),
            'p95': float(np.percentile(x, 95, method='inverted_cdf')),
            'p99': float(np.percentile(x, 99, method='inverted_cdf'))}
    for a, b in ((0, 1), (0, 2), (1, 2)):
        n_a, n_b = int((branch == a).sum()), int((branch == b).sum())
        row = two_proportions(int(success[branch == a].sum()), n_a, int(success[branch == b].sum()), n_b)
        lat_a, lat_b = latency[branch == a], latency[branch == b]
        row.update({'branch_a': BRANCHES[a], 'branch_b': BRANCHES[b], 'sample_size_a': n_a, 'sample_size_b': n_b,
                    'avg_latency_a': math.fsum(lat_a) / n_a, 'avg_latency_b': math.fsum(lat_b) / n_b,
                    'latency_diff': math.fsum(lat_b) / n_b - math.fsum(lat_a) / n_a,
                    'latency_p_value': welch_p(lat_a, lat_b)})
        expected['compare'].append(row)
    for k, name in enumerate(BRANCHES):
        for event in sorted(EVENTS):
            v = event_value[(event_branch == k) & (event_name == event)]
            expected['events'].append({'branch': name, 'event_name': event, 'count': int(len(v)),
                                       'sum': math.fsum(v), 'mean': math.fsum(v) / len(v),
                                       'stddev': float(np.std(v, ddof=1))})
    for event in sorted(EVENTS):
        for a, b in ((0, 1), (0, 2)):
            va = event_value[(event_branch == a) & (event_name == event)]
            vb = event_value[(event_branch == b) & (event_name == event)]
            mean_a, mean_b = math.fsum(va) / len(va), math.fsum(vb) / len(vb)
            expected['compare_event'].append({
                'branch_a': BRANCHES[a], 'branch_b': BRANCHES[b], 'event_name': event,
                'count_a': int(len(va)), 'count_b': int(len(vb)), 'mean_a': mean_a, 'mean_b': mean_b,
                'diff': mean_b - mean_a, 'p_value': welch_p(va, vb)})

    # Sample-ratio check: the users each primary assigned, by the hash formula.
    bounds = np.cumsum(ALLOCATION)
    assigned = [0] * len(BRANCHES)
    for i in range(1, USERS + 1):
        assigned[int(np.searchsorted(bounds, bucket(EXPERIMENT, f'u{i}')[2], side='right'))] += 1
    chi2, p = stats.chisquare(assigned, [USERS * share / 10000 for share in ALLOCATION])
    expected['srm'] = {'assigned_users': assigned, 'chi_square': float(chi2), 'p_value': float(p),
                       'degrees_of_freedom': len(BRANCHES) - 1}
    expected['users'] = USERS
    with open(os.path.join(args.outdir, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)


if __name__ == '__main__':
    main()
