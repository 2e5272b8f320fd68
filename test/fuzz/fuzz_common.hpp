// Shared by the libFuzzer targets: how a target reports a finding.
//
// abtest::Error is the core's one way of refusing input, so a target catches it and
// moves on. Anything else - another exception, a broken invariant, a crash or a
// sanitizer report - is a finding: the target aborts and libFuzzer saves the input.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace abtest_fuzz {

[[noreturn]] inline void Finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline std::string_view AsText(const unsigned char* data, std::size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Runs `body`; abtest::Error is expected, every other exception is a finding.
template <typename Body>
void Guarded(const char* where, Body&& body) {
  try {
    body();
  } catch (const abtest::Error&) {
    // expected: the core refused the input
  } catch (const std::exception& e) {
    Finding(std::string(where) + ": unexpected exception (not abtest::Error): " + e.what());
  } catch (...) {
    Finding(std::string(where) + ": unexpected non-std exception");
  }
}

}  // namespace abtest_fuzz
