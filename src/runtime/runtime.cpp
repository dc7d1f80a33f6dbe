#include "perpo/runtime/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <cstdlib>
#include <sstream>

#include "perpo/core/error.h"

namespace perpo {

std::mt19937_64& global_rng() {
  static std::mt19937_64 engine(0);
  return engine;
}

void seed_all(std::uint64_t seed) {
  global_rng().seed(seed);
  std::srand(static_cast<unsigned>(seed));
  torch::manual_seed(seed);  // seeds CUDA generators too when CUDA is present
}

c10::Device parse_device(const std::string& text) {
  if (text == "cpu") return c10::Device(c10::kCPU);
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw input_error("device '", text, "' asked for, but this LibTorch sees no CUDA device")
          .hint("use run.device=cpu, or build perpo against a CUDA LibTorch");
    }
    try {
      c10::Device device(text);
      if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
        throw input_error("device '", text, "' does not exist: ", torch::cuda::device_count(),
                          " CUDA device(s) visible");
      }
      return device;
    } catch (const c10::Error&) {
      throw input_error("cannot parse device '", text, "'").hint("use cpu, cuda or cuda:N");
    }
  }
  throw input_error("unknown device '", text, "'").hint("use cpu, cuda or cuda:N");
}

c10::ScalarType parse_dtype(const std::string& text) {
  if (text == "fp32" || text == "float32" || text == "float") return c10::kFloat;
  if (text == "bf16" || text == "bfloat16") return c10::kBFloat16;
  if (text == "fp16" || text == "float16" || text == "half") return c10::kHalf;
  throw input_error("unknown dtype '", text, "'").hint("use fp32, bf16 or fp16");
}

int set_threads(int threads) {
  PERPO_CHECK_INPUT(threads >= 0, "run.threads must be >= 0, got ", threads);
  if (threads > 0) at::set_num_threads(threads);
  return at::get_num_threads();
}

std::string runtime_summary() {
  std::ostringstream out;
  out << "LibTorch " << TORCH_VERSION << ", CUDA: ";
  if (torch::cuda::is_available()) {
    out << "yes (" << torch::cuda::device_count() << " device(s))";
  } else {
    out << "no";
  }
  out << ", threads: " << at::get_num_threads();
  return out.str();
}

}  // namespace perpo
