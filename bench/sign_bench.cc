// What signing costs per delivery in each signature scheme: one endpoint's Signer (prepared
// once, as the scheduler's endpoint cache keeps it) signing deliveries of a given body size.
// Prints the median of 5 runs per scheme, and each scheme's cost relative to standard's,
// measured in the same run.
//   build/bench/herald_sign_bench [BODY_BYTES] [KEYS]   (defaults: 1024 bytes, 1 key)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/signer.h"
#include "core/signing.h"
#include "core/types.h"

int main(int argc, char** argv) {
  using namespace herald;
  const size_t body_bytes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1024;
  const size_t key_count = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1;
  if (body_bytes == 0 || key_count == 0) {
    std::fprintf(stderr, "usage: herald_sign_bench [BODY_BYTES>0] [KEYS>0]\n");
    return 2;
  }
  const std::string body(body_bytes, 'x');
  constexpr int kRuns = 5;
  constexpr int kPerRun = 20000;
  double standard_us = 0;
  std::printf("scheme    us/delivery  x standard  (%zu-byte body, %zu key(s), median of %d)\n",
              body_bytes, key_count, kRuns);
  for (SignatureScheme scheme : {SignatureScheme::kStandard, SignatureScheme::kStripe,
                                 SignatureScheme::kGithub, SignatureScheme::kEd25519}) {
    std::vector<SigningKey> keys;
    for (size_t k = 0; k < key_count; ++k) keys.push_back(generate_key(key_kind_for(scheme)));
    const Signer signer(scheme, std::nullopt, keys);
    HeaderList out;
    std::vector<double> runs;
    for (int r = 0; r < kRuns; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kPerRun; ++i) {
        out.clear();
        signer.sign("msg_0358CwJ2510yIXnWOzmvsE", 1'700'000'000 + i, body, out);
      }
      const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - t0;
      runs.push_back(took.count() / kPerRun);
    }
    std::sort(runs.begin(), runs.end());
    const double median = runs[kRuns / 2];
    if (scheme == SignatureScheme::kStandard) standard_us = median;
    std::printf("%-9s %11.2f  %10.1f\n", scheme_name(scheme), median, median / standard_us);
  }
  return 0;
}
