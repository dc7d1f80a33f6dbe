// Operator counts and times per named part of a step, from LibTorch's RecordFunction hooks.
//
//   perpo::OpProfile profile;                  // counts from here on, on this thread
//   for (int i = 0; i < 40; ++i) train_step();  // whose parts are RECORD_USER_SCOPE("loss") ...
//   profile.stop();
//   std::cout << profile.table(/*steps=*/40);
//
// A part is the path of user scopes an operator ran in ("step/score_list/encode_prefix");
// operators outside every scope count under "(none)". The table gives, per part and per step:
// wall ms (the scope's time less its nested scopes'), "top" operators (those called by perpo's
// code or by the autograd engine: each is one trip through the dispatcher) and all operators
// (nested ones included: aten::linear -> aten::addmm counts 2). The times include the hooks' own
// cost (about a microsecond per operator), so compare them with each other, not with an
// unprofiled run. The 20 operators with the most self time follow.
//
// Parts cost nothing when no profile is running (RecordFunction checks for callbacks first).
#pragma once

#include <cstdint>
#include <string>

namespace perpo {

class OpProfile {
 public:
  OpProfile();  // starts
  ~OpProfile();
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  void stop();
  /// The tables, figures divided by `steps`.
  std::string table(std::int64_t steps) const;

 private:
  std::uint64_t handle_ = 0;
  bool running_ = false;
};

}  // namespace perpo
