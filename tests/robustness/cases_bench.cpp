// Robustness rows for `perpo bench`: bad shapes, devices, dtypes and counts are refused before
// any model is built. Machine-dependent rows (CUDA without a GPU, the 7B model on a host without
// the memory for it) are listed only where they apply.
#include <torch/cuda.h>

#include <algorithm>

#include "harness.h"
#include "perpo/bench/bench_shape.h"
#include "perpo/model/model_size.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(bench) {
  const std::string tiny = "bench --shape tiny --no-peer --iterations 1 ";
  CaseList rows = {
      {"bad_shape", "bench --shape 13b --no-peer", nullptr, 2, "unknown bench shape '13b'"},
      {"bad_device", tiny + "--device tpu", nullptr, 2, "unknown device 'tpu'"},
      {"bad_device_index", tiny + "--device cuda:x", nullptr, 2, "cuda:x"},
      {"bad_dtype", tiny + "--dtype fp8", nullptr, 2, "unknown --dtype 'fp8'"},
      {"fp16_refused", tiny + "--dtype fp16", nullptr, 2, "use fp32 or bf16"},
      {"one_answer", tiny + "--answers 1", nullptr, 2, "--answers must be between 2 and 4096"},
      {"zero_answers", tiny + "--answers 0", nullptr, 2, "--answers must be between 2 and 4096"},
      {"answers_not_a_number", tiny + "--answers many", nullptr, 2, "--answers"},
      {"zero_iterations", "bench --shape tiny --no-peer --iterations 0", nullptr, 2,
       "--iterations must be >= 1"},
      {"negative_threads", tiny + "--threads -1", nullptr, 2, "--threads must be >= 0"},
      {"busy_cores_negative", tiny + "--busy-cores -1", nullptr, 2,
       "--busy-cores must be in [0, 64], got -1"},
      {"busy_cores_too_many", tiny + "--busy-cores 65", nullptr, 2,
       "--busy-cores must be in [0, 64], got 65"},
      {"busy_cores_text", tiny + "--busy-cores one", nullptr, 2, "--busy-cores"},
      {"negative_peak", tiny + "--peak-tflops -5", nullptr, 2, "--peak-tflops must be a positive"},
      {"nan_peak", tiny + "--peak-tflops nan", nullptr, 2, "--peak-tflops"},
      {"unknown_flag", tiny + "--fast", nullptr, 2, "--fast"},
      // A peer that cannot run is an error naming its Python and what it printed (issue 21:
      // /bin/false crashed with basic_string::substr; a Python without transformers was dropped
      // silently). Both are found before perpo measures anything.
      {"peer_python_fails", "bench --shape tiny --iterations 1 --python /bin/false", nullptr, 1,
       "the bench peer failed: /bin/false -c 'import torch, transformers' exited with status 1; "
       "it printed nothing"},
      {"peer_without_transformers", "bench --shape tiny --iterations 1 --python {dir}/python",
       [](const fs::path& dir) {
         write_text(dir / "python",
                    "#!/bin/sh\n"
                    "echo \"ModuleNotFoundError: No module named 'transformers'\" >&2\n"
                    "exit 1\n");
         fs::permissions(dir / "python", fs::perms::owner_all, fs::perm_options::replace);
       },
       1, "lacks the Python module 'transformers'"},
  };
  if (!torch::cuda::is_available()) {
    rows.push_back({"cuda_without_gpu", tiny + "--device cuda", nullptr, 2,
                    "this LibTorch sees no CUDA device"});
  }
  // The 7B models in fp32 on the host: refused with their size where the memory is short (the
  // check, not the 28-31 GB models, is what these rows test).
  for (const char* name : {"7b", "qwen2.5-vl-7b"}) {
    const BenchShape seven = bench_shape(name);
    const std::uint64_t need =
        std::max<std::uint64_t>(bench_model_size(seven).fp32_bytes, train_state_bytes(seven, 4));
    const auto available = available_memory_bytes();
    if (available && *available < need) {
      const std::string shape = name;
      rows.push_back({shape == "7b" ? "seven_b_on_small_host" : "qwen_seven_b_on_small_host",
                      "bench --shape " + shape + " --device cpu --no-peer", nullptr, 2,
                      "perpo bench --shape " + shape + " needs about"});
    }
  }
  return rows;
}

}  // namespace perpo::robustness
