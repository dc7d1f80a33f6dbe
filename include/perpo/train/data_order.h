// The order in which a training run visits its lists (or SFT records), and where it stands.
//
//   perpo::DataOrder order(lists.size(), config.run.seed, config.data.shuffle);
//   std::vector<std::size_t> batch = order.take(config.train.lists_per_step);   // indices
//   perpo::DataPosition saved = order.position();   // into the checkpoint
//   order.seek(saved);                               // on resume: the same indices follow
//
// Epoch e visits a permutation of 0..n-1 that depends only on (seed, e), so a position
// (epoch, cursor) is all a checkpoint needs to continue in exactly the same order. The stream runs
// on across epoch boundaries (a micro-batch may take the last lists of one epoch and the first of
// the next).
//
// Data-parallel seam: with a process group of W ranks, every rank builds the same DataOrder, takes
// W * lists_per_step indices per micro-batch and keeps its slice [rank::W] (take(count, rank,
// world)); the position stays global, so checkpoints are rank-independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace perpo {

struct DataPosition {
  std::int64_t epoch = 0;   // 0-based
  std::int64_t cursor = 0;  // index into the epoch's permutation
};

class DataOrder {
 public:
  DataOrder(std::size_t items, std::uint64_t seed, bool shuffle);

  /// The next `count` * `world` indices of the stream; this rank's `count` of them.
  std::vector<std::size_t> take(std::size_t count, int rank = 0, int world = 1);

  const DataPosition& position() const { return position_; }
  void seek(const DataPosition& position);
  std::size_t items() const { return items_; }

  /// The permutation of epoch `epoch` (identity when not shuffling).
  std::vector<std::size_t> permutation(std::int64_t epoch) const;

 private:
  std::size_t items_;
  std::uint64_t seed_;
  bool shuffle_;
  DataPosition position_;
  std::vector<std::size_t> current_;  // permutation of position_.epoch
};

}  // namespace perpo
