// Always-valid p-values for the difference of two conversion rates, so that an
// experiment may be looked at as often as anyone likes without inflating false positives.
//
// The mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh,
// "Always Valid Inference: Continuous Monitoring of A/B Tests" (2017), the test behind
// Optimizely's stats engine. With the estimate theta = rate_b - rate_a, its variance
// V = rate_a (1 - rate_a) / n_a + rate_b (1 - rate_b) / n_b, and a normal mixing
// distribution N(0, tau2) over the true difference, the mixture likelihood ratio is
//
//   Lambda = sqrt(V / (V + tau2)) * exp(tau2 * theta^2 / (2 V (V + tau2)))
//
// and the always-valid p-value after looks 1..n is p_n = min(p_{n-1}, 1 / Lambda_n),
// p_0 = 1. Under the null, P(p_n ever <= alpha) <= alpha (Ville's inequality), so
// stopping the moment p_n < alpha keeps the false positive rate at alpha.
#pragma once

#include <vector>

#include "core/statistics.hpp"

namespace abtest {

// The default mixing variance tau2: the test is most powerful for true differences of
// about tau, and A/B tests of conversion rates look for absolute differences of around
// one percentage point (0.01), so tau2 = 0.01^2. Smaller effects are still found, later;
// a tau far from the effects sought only costs power, never validity.
constexpr double kDefaultMixingVariance = 1e-4;

// min(1, 1 / Lambda) at one look, from the cumulative counts of both branches. Rules
// for degenerate input: no trials in a branch, or V = 0 (every rate is 0 or 1, e.g.
// no conversions anywhere yet), give 1: the normal approximation behind Lambda has no
// variance to measure evidence against, and 1 is the conservative choice that keeps
// the p-value valid. Computed in log space: an overwhelming Lambda gives 0, not NaN.
// Throws kInvalidParameter for invalid counts or a tau2 that is not finite and > 0.
double SequentialPValue(const Conversions& a, const Conversions& b, double tau2 = kDefaultMixingVariance);

// min(1, 1 / Lambda) for any asymptotically normal estimate `theta` of a difference with
// variance `v` (the same mixture; ab_analyze uses it for differences of means and
// ratios). 1 when v is not > 0. Throws kInvalidParameter for a tau2 that is not finite
// and > 0 or a non-finite theta.
double SequentialPValueOfEstimate(double theta, double v, double tau2 = kDefaultMixingVariance);

// One more look: min(previous_p_value, SequentialPValue(a, b, tau2)). previous_p_value
// is 1 before the first look. Throws kInvalidParameter when it is outside [0, 1].
double UpdateSequentialPValue(double previous_p_value, const Conversions& a, const Conversions& b,
                              double tau2 = kDefaultMixingVariance);

// Cumulative counts of both branches at one look.
struct Look {
  Conversions a;
  Conversions b;
};

// The always-valid p-value after each look, in order (a running minimum).
std::vector<double> SequentialPValues(const std::vector<Look>& looks, double tau2 = kDefaultMixingVariance);

}  // namespace abtest
