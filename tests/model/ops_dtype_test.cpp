// The operator table: every operation the model is built from, run in a lower precision or on
// another device, against the same operation in fp32 on the CPU (in the manner of llama.cpp's
// test-backend-ops). One row = operation x dtype x device, with its own tolerance; the error is
// max |out - ref| / max(1, max |ref|) (relative to the output's scale), so a row fails when an
// operation loses more precision than bf16 rounding of its inputs and outputs explains.
// CPU rows always run; CUDA rows run when LibTorch sees a GPU and are skipped (saying so)
// otherwise.
#include <ATen/ops/scaled_dot_product_attention.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/normalization.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>

#include "perpo/model/activations.h"
#include "perpo/model/clip.h"
#include "perpo/model/llama.h"
#include "perpo/model/lora_linear.h"

namespace perpo {
namespace {

struct OpContext {
  c10::Device device;
  c10::ScalarType dtype;
  /// An fp32 CPU tensor drawn from the seeded generator, moved to the row's device and dtype.
  torch::Tensor randn(at::IntArrayRef shape, double scale = 1.0) const {
    return (torch::randn(shape) * scale).to(device, dtype);
  }
  template <typename Module>
  Module on_device(Module module) const {
    module->to(device, dtype);
    return module;
  }
};

// Each operation builds its inputs and modules from torch::manual_seed(0) in fp32 on the CPU, then
// moves them, so that every row of an operation sees the same numbers before rounding.
using Op = std::function<torch::Tensor(const OpContext&)>;

TextConfig text_config() {
  TextConfig text;
  text.hidden_size = 128;
  text.intermediate_size = 344;
  text.num_attention_heads = 4;
  text.num_key_value_heads = 2;
  return text;
}

const std::map<std::string, Op>& ops() {
  static const std::map<std::string, Op> table = {
      {"linear",  // LoraLinear (every projection): (4, 16, 128) -> (4, 16, 96)
       [](const OpContext& c) {
         LoraLinear linear = c.on_device(LoraLinear(128, 96, true));
         return linear(c.randn({4, 16, 128}));
       }},
      {"rms_norm",  // the decoder's RMSNorm (fp32 inside, cast back)
       [](const OpContext& c) {
         RmsNorm norm(128, 1e-5);
         torch::NoGradGuard no_grad;
         norm->weight.uniform_(0.5, 1.5);
         return c.on_device(norm)(c.randn({4, 16, 128}, 3.0));
       }},
      {"layer_norm",  // CLIP's LayerNorm
       [](const OpContext& c) {
         torch::nn::LayerNorm norm(torch::nn::LayerNormOptions({64}).eps(1e-5));
         return c.on_device(norm)(c.randn({2, 50, 64}, 2.0) + 1.0);
       }},
      {"softmax",
       [](const OpContext& c) {
         return torch::softmax(c.randn({8, 4, 64}, 4.0), -1);
       }},
      {"sdpa",  // causal grouped-query attention: 4 query heads on 2 key/value heads
       [](const OpContext& c) {
         torch::Tensor q = c.randn({2, 4, 48, 32}), k = c.randn({2, 2, 48, 32});
         torch::Tensor v = c.randn({2, 2, 48, 32});
         return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true,
                                                 /*scale=*/std::nullopt, /*enable_gqa=*/true);
       }},
      {"rope",  // the decoder's rotary tables and rotate-half application
       [](const OpContext& c) {
         RotaryEmbedding rotary(text_config());
         torch::Tensor positions =
             torch::arange(100, 164, torch::TensorOptions().dtype(torch::kInt64).device(c.device))
                 .unsqueeze(0);
         auto [cos, sin] = rotary.cos_sin(positions, c.dtype);
         return apply_rotary(c.randn({2, 4, 64, 32}), cos, sin);
       }},
      {"silu_mlp",  // the decoder's SwiGLU MLP
       [](const OpContext& c) {
         LlamaMlp mlp = c.on_device(LlamaMlp(text_config()));
         return mlp(c.randn({2, 16, 128}));
       }},
      {"gelu_mlp",  // CLIP's MLP with exact GELU (projector activation) and with quick_gelu
       [](const OpContext& c) {
         VisionConfig vision;
         vision.hidden_size = 64;
         vision.intermediate_size = 256;
         vision.hidden_act = "gelu";
         ClipMlp gelu = c.on_device(ClipMlp(vision));
         vision.hidden_act = "quick_gelu";
         ClipMlp quick = c.on_device(ClipMlp(vision));
         torch::Tensor x = c.randn({2, 20, 64});
         return torch::cat({gelu(x), quick(x)}, -1);
       }},
      {"logsoftmax_gather",  // answer log-probs: logits in the dtype, log-softmax in fp32
       [](const OpContext& c) {
         torch::Tensor logits = c.randn({4, 12, 1000}, 3.0);
         torch::Tensor targets = torch::randint(0, 1000, {4, 12, 1}).to(c.device);
         return logits.to(torch::kFloat32).log_softmax(-1).gather(-1, targets).squeeze(-1);
       }},
      {"cross_entropy",  // mean token NLL on logits in the dtype
       [](const OpContext& c) {
         torch::Tensor logits = c.randn({48, 1000}, 3.0);
         torch::Tensor targets = torch::randint(0, 1000, {48}).to(c.device);
         return torch::nn::functional::cross_entropy(logits, targets).reshape({1});
       }},
  };
  return table;
}

torch::Tensor run_op(const std::string& name, const c10::Device& device, c10::ScalarType dtype) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  return ops().at(name)({device, dtype}).to(torch::kCPU, torch::kFloat32);
}

struct Row {
  std::string op;
  c10::ScalarType dtype;
  bool cuda;
  double tolerance;  // max |out - ref| / max(1, max |ref|)
};

void PrintTo(const Row& row, std::ostream* out) { *out << row.op; }

// bf16 keeps 8 significant bits (relative rounding up to 2^-8). CPU bf16 tolerances are about
// twice the error measured with LibTorch 2.13 (linear 0.0048, rms_norm 0.0057, layer_norm 0.0054,
// softmax 0.0081 on logits up to ~16, sdpa 0.0039, rope 0.0053, silu_mlp 0.0023, gelu_mlp 0.0059,
// logsoftmax_gather 0.0014, cross_entropy 0.0021); CUDA bf16 kernels accumulate in another order,
// so their rows allow 1.5 times more. CUDA fp32 (no TF32) must match the CPU to float rounding.
struct Tolerance {
  const char* op;
  double cpu_bf16, cuda_fp32;
};
constexpr Tolerance kTolerances[] = {
    {"linear", 0.01, 1e-5},         {"rms_norm", 0.012, 1e-5}, {"layer_norm", 0.012, 1e-5},
    {"softmax", 0.016, 1e-6},       {"sdpa", 0.008, 1e-5},     {"rope", 0.01, 1e-5},
    {"silu_mlp", 0.005, 1e-5},      {"gelu_mlp", 0.012, 1e-5}, {"logsoftmax_gather", 0.003, 1e-5},
    {"cross_entropy", 0.005, 1e-5},
};

std::vector<Row> make_rows() {
  std::vector<Row> rows;
  for (const Tolerance& t : kTolerances)
    rows.push_back({t.op, torch::kBFloat16, false, t.cpu_bf16});
  for (const Tolerance& t : kTolerances) rows.push_back({t.op, torch::kFloat32, true, t.cuda_fp32});
  for (const Tolerance& t : kTolerances) {
    rows.push_back({t.op, torch::kBFloat16, true, 1.5 * t.cpu_bf16});
  }
  return rows;
}

const std::vector<Row> kRows = make_rows();

class OpsDtype : public ::testing::TestWithParam<Row> {};

TEST_P(OpsDtype, MatchesCpuFp32) {
  const Row& row = GetParam();
  if (row.cuda && !torch::cuda::is_available()) {
    GTEST_SKIP() << "CUDA row skipped: this LibTorch sees no CUDA device";
  }
  const c10::Device device = row.cuda ? c10::Device(c10::kCUDA) : c10::Device(c10::kCPU);
  const torch::Tensor reference = run_op(row.op, c10::Device(c10::kCPU), torch::kFloat32);
  const torch::Tensor out = run_op(row.op, device, row.dtype);
  ASSERT_EQ(out.sizes(), reference.sizes());
  ASSERT_TRUE(out.isfinite().all().item<bool>()) << row.op;
  const double scale = std::max(1.0, reference.abs().max().item<double>());
  const double error = (out - reference).abs().max().item<double>() / scale;
  EXPECT_LE(error, row.tolerance) << row.op << " in " << c10::toString(row.dtype) << " on "
                                  << device << ": error " << error;
  // The bf16 rows must differ from fp32 at all: the operation really ran in bf16.
  if (row.dtype == torch::kBFloat16) {
    EXPECT_GT(error, 0) << row.op << " did not run in bf16";
  }
  std::printf("[ ops ] %-18s %-8s %-4s error %.3g (tolerance %.3g)\n", row.op.c_str(),
              c10::toString(row.dtype), row.cuda ? "cuda" : "cpu", error, row.tolerance);
}

INSTANTIATE_TEST_SUITE_P(, OpsDtype, ::testing::ValuesIn(kRows),
                         [](const ::testing::TestParamInfo<Row>& info) {
                           return info.param.op + "_" +
                                  (info.param.dtype == torch::kBFloat16 ? "bf16" : "fp32") + "_" +
                                  (info.param.cuda ? "cuda" : "cpu");
                         });

TEST(OpsDtypeTable, CoversEveryOperationOnCpuBf16) {
  for (const auto& [name, op] : ops()) {
    bool found = false;
    for (const Row& row : kRows)
      found |= row.op == name && !row.cuda && row.dtype == torch::kBFloat16;
    EXPECT_TRUE(found) << name << " has no CPU bf16 row";
  }
}

}  // namespace
}  // namespace perpo
