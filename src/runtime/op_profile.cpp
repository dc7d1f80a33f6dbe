// Operator counts and times per part of a step (op_profile.h).
#include "perpo/runtime/op_profile.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <mutex>
#include <vector>

#include "perpo/core/error.h"

namespace perpo {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Frame {
  std::string name;
  bool user_scope = false;
  std::int64_t start_ns = 0;
  std::int64_t child_ns = 0;        // nested frames' time (any kind)
  std::int64_t child_scope_ns = 0;  // nested user scopes' time
};

struct PartStats {
  std::int64_t wall_ns = 0;  // less nested scopes
  std::int64_t top_ops = 0;
  std::int64_t all_ops = 0;
};

struct OpStats {
  std::int64_t calls = 0;
  std::int64_t self_ns = 0;
};

struct Collected {
  std::mutex mutex;
  std::map<std::string, PartStats> parts;
  std::map<std::string, OpStats> ops;
};

Collected& collected() {
  static Collected c;
  return c;
}

thread_local std::vector<Frame> stack;

std::string part_path() {
  std::string path;
  for (const Frame& frame : stack) {
    if (!frame.user_scope) continue;
    path += (path.empty() ? "" : "/") + frame.name;
  }
  return path.empty() ? "(none)" : path;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  Frame frame;
  frame.name = fn.name();
  frame.user_scope = fn.scope() == at::RecordScope::USER_SCOPE;
  frame.start_ns = now_ns();
  stack.push_back(std::move(frame));
  return nullptr;
}

void on_end(const at::RecordFunction& /*fn*/, at::ObserverContext* /*ctx*/) {
  if (stack.empty()) return;  // started before the profile
  const std::int64_t end = now_ns();
  Frame frame = std::move(stack.back());
  stack.pop_back();
  const std::int64_t total = end - frame.start_ns;
  const bool top =
      std::none_of(stack.begin(), stack.end(), [](const Frame& f) { return !f.user_scope; });
  Collected& c = collected();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (!stack.empty()) {
    stack.back().child_ns += total;
    if (frame.user_scope) stack.back().child_scope_ns += total;
  }
  if (frame.user_scope) {
    stack.push_back(frame);  // the scope's own path
    c.parts[part_path()].wall_ns += total - frame.child_scope_ns;
    stack.pop_back();
    return;
  }
  PartStats& part = c.parts[part_path()];
  ++part.all_ops;
  if (top) ++part.top_ops;
  OpStats& op = c.ops[frame.name];
  ++op.calls;
  op.self_ns += total - frame.child_ns;
  if (stack.empty()) part.wall_ns += total;  // an operator outside every scope
}

std::string format_row(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string format_row(const char* format, ...) {
  char line[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  return line;
}

}  // namespace

OpProfile::OpProfile() {
  Collected& c = collected();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.parts.clear();
    c.ops.clear();
  }
  stack.clear();
  at::RecordFunctionCallback callback(on_start, on_end);
  callback.needsInputs(false).needsOutputs(false).needsIds(false);
  handle_ = at::addThreadLocalCallback(callback);
  running_ = true;
}

OpProfile::~OpProfile() { stop(); }

void OpProfile::stop() {
  if (!running_) return;
  at::removeCallback(handle_);
  running_ = false;
  stack.clear();
}

std::string OpProfile::table(std::int64_t steps) const {
  PERPO_CHECK(steps > 0, "OpProfile::table: steps must be > 0, got ", steps);
  Collected& c = collected();
  std::lock_guard<std::mutex> lock(c.mutex);
  const double per = static_cast<double>(steps);
  std::string out =
      format_row("%-44s %10s %10s %10s\n", "part (per step)", "wall ms", "top ops", "all ops");
  PartStats total;
  for (const auto& [name, part] : c.parts) {
    out += format_row("%-44s %10.3f %10.1f %10.1f\n", name.c_str(), part.wall_ns / 1e6 / per,
                      part.top_ops / per, part.all_ops / per);
    total.wall_ns += part.wall_ns;
    total.top_ops += part.top_ops;
    total.all_ops += part.all_ops;
  }
  out += format_row("%-44s %10.3f %10.1f %10.1f\n", "total", total.wall_ns / 1e6 / per,
                    total.top_ops / per, total.all_ops / per);
  std::vector<std::pair<std::string, OpStats>> ops(c.ops.begin(), c.ops.end());
  std::sort(ops.begin(), ops.end(),
            [](const auto& a, const auto& b) { return a.second.self_ns > b.second.self_ns; });
  out += format_row("\n%-44s %10s %10s %10s\n", "operator (self time)", "ms/step", "calls/step",
                    "us/call");
  for (std::size_t i = 0; i < ops.size() && i < 20; ++i) {
    const OpStats& op = ops[i].second;
    out += format_row("%-44s %10.3f %10.1f %10.2f\n", ops[i].first.substr(0, 44).c_str(),
                      op.self_ns / 1e6 / per, op.calls / per,
                      op.self_ns / 1e3 / static_cast<double>(op.calls));
  }
  return out;
}

}  // namespace perpo
