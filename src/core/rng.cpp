#include "core/rng.hpp"

#include <xxhash.h>

namespace strata::rng {

uint64_t make_key(uint64_t seed, const std::string& name, uint64_t step) {
  return mix64(mix64(seed) ^ XXH64(name.data(), name.size(), 0) ^ mix64(step + 0x632BE59BD9B4E019ull));
}

}  // namespace strata::rng
