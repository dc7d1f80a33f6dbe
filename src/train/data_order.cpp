// Deterministic epoch permutations (see data_order.h).
#include "perpo/train/data_order.h"

#include <numeric>
#include <random>

#include "perpo/core/error.h"

namespace perpo {

DataOrder::DataOrder(std::size_t items, std::uint64_t seed, bool shuffle)
    : items_(items), seed_(seed), shuffle_(shuffle) {
  PERPO_CHECK_INPUT(items > 0, "the training data holds no records");
  current_ = permutation(0);
}

std::vector<std::size_t> DataOrder::permutation(std::int64_t epoch) const {
  std::vector<std::size_t> order(items_);
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (!shuffle_) return order;
  // Fisher-Yates with our own index draw: std::shuffle's use of the engine is
  // implementation-defined, this order is the same with every standard library.
  std::mt19937_64 engine(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(epoch) + 1);
  for (std::size_t i = items_; i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(engine() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

std::vector<std::size_t> DataOrder::take(std::size_t count, int rank, int world) {
  std::vector<std::size_t> mine;
  for (std::size_t k = 0; k < count * static_cast<std::size_t>(world); ++k) {
    if (position_.cursor >= static_cast<std::int64_t>(items_)) {
      ++position_.epoch;
      position_.cursor = 0;
      current_ = permutation(position_.epoch);
    }
    const std::size_t index = current_[position_.cursor++];
    if (static_cast<int>(k % world) == rank) mine.push_back(index);
  }
  return mine;
}

void DataOrder::seek(const DataPosition& position) {
  PERPO_CHECK(position.epoch >= 0 && position.cursor >= 0 &&
                  position.cursor <= static_cast<std::int64_t>(items_),
              "data position (epoch ", position.epoch, ", cursor ", position.cursor,
              ") is outside data of ", items_, " records");
  position_ = position;
  current_ = permutation(position.epoch);
}

}  // namespace perpo
