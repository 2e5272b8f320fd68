// The floor under a sticky lookup: how long one random read takes in a shared
// mapping of the sticky cache's size, as PostgreSQL maps its shared memory
// (MAP_SHARED | MAP_ANONYMOUS, with MAP_HUGETLB when huge pages are asked for).
//
// Usage: memory_latency MEGABYTES [huge]
// Prints nanoseconds per read of a pointer chase through a random cycle of
// cache lines: every read depends on the one before, as a routing call's lookup
// depends on the user's hash, so no two reads overlap.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

namespace {

constexpr std::size_t kLine = 64;
constexpr std::size_t kReads = 4000000;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::atol(argv[1]) <= 0) {
    std::fprintf(stderr, "usage: %s MEGABYTES [huge]\n", argv[0]);
    return 2;
  }
  const std::size_t bytes = static_cast<std::size_t>(std::atol(argv[1])) << 20;
  const bool huge = argc > 2 && std::strcmp(argv[2], "huge") == 0;
  void* mapping = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | (huge ? MAP_HUGETLB : 0),
                       -1, 0);
  if (mapping == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  auto* base = static_cast<char*>(mapping);

  // One random cycle through all lines: line order[i] points to line order[i + 1].
  const std::size_t lines = bytes / kLine;
  std::vector<std::uint32_t> order(lines);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  for (std::size_t i = 0; i < lines; ++i) {
    char* from = base + static_cast<std::size_t>(order[i]) * kLine;
    char* to = base + static_cast<std::size_t>(order[(i + 1) % lines]) * kLine;
    std::memcpy(from, &to, sizeof to);
  }

  char* at = base + static_cast<std::size_t>(order[0]) * kLine;
  for (std::size_t i = 0; i < kReads / 4; ++i) std::memcpy(&at, at, sizeof at);  // warm-up
  auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < kReads; ++i) std::memcpy(&at, at, sizeof at);
  std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
  std::printf("%.1f\n", elapsed.count() / kReads + (at == nullptr ? 1 : 0));  // `at` keeps the chase alive
  munmap(mapping, bytes);
  return 0;
}
