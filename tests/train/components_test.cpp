// Unit tests of the trainer's parts: schedules, AdamW, data order, TensorBoard files, checkpoint
// folders, resume checks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "perpo/config/config_io.h"
#include "perpo/model/run_checkpoint.h"
#include "perpo/train/data_order.h"
#include "perpo/train/metrics.h"
#include "perpo/train/optimizer.h"
#include "perpo/train/resume.h"
#include "perpo/train/schedule.h"
#include "perpo/train/tensorboard.h"
#include "tensorboard_reader.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

TEST(ParameterGroups, BothFamiliesNamesByPart) {
  EXPECT_EQ(parameter_group_of("vision_tower.vision_model.embeddings.patch_embedding.weight"),
            "vision");
  EXPECT_EQ(parameter_group_of("multi_modal_projector.linear_1.weight"), "projector");
  // Qwen2.5-VL: the tower under visual., its 2x2 patch merger the projector.
  EXPECT_EQ(parameter_group_of("visual.blocks.0.attn.qkv.weight"), "vision");
  EXPECT_EQ(parameter_group_of("visual.blocks.0.attn.qkv.lora_A"), "vision");
  EXPECT_EQ(parameter_group_of("visual.patch_embed.proj.weight"), "vision");
  EXPECT_EQ(parameter_group_of("visual.merger.mlp.0.weight"), "projector");
  EXPECT_EQ(parameter_group_of("language_model.layers.0.self_attn.q_proj.lora_B"), "decoder");
  EXPECT_EQ(parameter_group_of("lm_head.weight"), "decoder");
}

TEST(Schedule, HandWorkedValues) {
  OptimConfig c;
  c.schedule = "cosine";
  EXPECT_DOUBLE_EQ(lr_multiplier(0, 10, c), 1.0);
  EXPECT_NEAR(lr_multiplier(5, 10, c), 0.5, 1e-12);  // 0.5 (1 + cos(pi/2))
  EXPECT_NEAR(lr_multiplier(10, 10, c), 0.0, 1e-12);
  c.warmup_steps = 2;
  EXPECT_DOUBLE_EQ(lr_multiplier(0, 10, c), 0.0);  // transformers: step / warmup
  EXPECT_DOUBLE_EQ(lr_multiplier(1, 10, c), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier(2, 10, c), 1.0);
  EXPECT_NEAR(lr_multiplier(6, 10, c), 0.5, 1e-12);  // p = (6 - 2) / 8
  c.warmup_steps = 0;
  c.schedule = "linear";
  c.min_lr_ratio = 0.1;
  EXPECT_NEAR(lr_multiplier(5, 10, c), 0.55, 1e-12);  // 0.1 + 0.9 * (1 - 0.5)
  c.schedule = "constant";
  EXPECT_DOUBLE_EQ(lr_multiplier(7, 10, c), 1.0);
}

torch::OrderedDict<std::string, at::Tensor> named(
    std::vector<std::pair<std::string, at::Tensor>> v) {
  torch::OrderedDict<std::string, at::Tensor> out;
  for (auto& [name, t] : v) out.insert(name, t);
  return out;
}

TEST(AdamW, MatchesLibTorchAdamW) {
  torch::manual_seed(3);
  at::Tensor ours = torch::randn({4, 3}).requires_grad_(true);
  at::Tensor theirs = ours.detach().clone().requires_grad_(true);
  OptimConfig c;
  c.lr = 0.01;
  c.weight_decay = 0.1;
  c.beta1 = 0.8;
  c.beta2 = 0.95;
  c.eps = 1e-6;
  AdamW optim(named({{"language_model.w", ours}}), c);
  torch::optim::AdamW reference(
      {theirs}, torch::optim::AdamWOptions(0.01).betas({0.8, 0.95}).eps(1e-6).weight_decay(0.1));
  for (int step = 0; step < 4; ++step) {
    at::Tensor grad = torch::randn({4, 3});
    ours.mutable_grad() = grad.clone();
    theirs.mutable_grad() = grad.clone();
    optim.step();
    reference.step();
  }
  EXPECT_TRUE(torch::allclose(ours, theirs, 1e-6, 1e-7)) << (ours - theirs).abs().max();
  EXPECT_EQ(optim.steps(), 4);
}

// The optimizer before it ran on LibTorch's fused kernels, one tensor operation at a time
// (PyTorch's AdamW, optimizer.h), on fp32 copies of the weights.
struct LoopAdamW {
  std::vector<at::Tensor> weights, exp_avg, exp_avg_sq;
  std::vector<double> lr, weight_decay;
  OptimConfig c;
  std::int64_t steps = 0;
  void step(const std::vector<at::Tensor>& grads) {
    ++steps;
    const double bias1 = 1.0 - std::pow(c.beta1, static_cast<double>(steps));
    const double bias2_sqrt = std::sqrt(1.0 - std::pow(c.beta2, static_cast<double>(steps)));
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const at::Tensor g = grads[i].to(torch::kFloat32);
      weights[i].mul_(1.0 - lr[i] * weight_decay[i]);
      exp_avg[i].mul_(c.beta1).add_(g, 1.0 - c.beta1);
      exp_avg_sq[i].mul_(c.beta2).addcmul_(g, g, 1.0 - c.beta2);
      const at::Tensor denom = (exp_avg_sq[i].sqrt() / bias2_sqrt).add_(c.eps);
      weights[i].addcdiv_(exp_avg[i], denom, -lr[i] / bias1);
    }
  }
};

TEST(AdamW, BothKernelsEqualTheTensorByTensorUpdateOver100Steps) {
  // Three groups with their own lr and decay, fp32 and bf16 (fp32 master) weights, a cosine
  // schedule: the fused kernel (CUDA's default) and the per-tensor one (CPU's) against the loop
  // above, 100 steps, to 1e-6.
  for (const AdamW::Kernel kernel : {AdamW::Kernel::kFused, AdamW::Kernel::kPerTensor}) {
    torch::manual_seed(11);
    OptimConfig c;
    c.lr = 3e-3;
    c.vision_lr = 1e-3;
    c.weight_decay = 0.05;
    c.projector_weight_decay = 0.2;
    c.beta1 = 0.85;
    c.beta2 = 0.97;
    c.eps = 1e-7;
    const std::vector<std::pair<std::string, at::Tensor>> params = {
        {"vision_tower.a", torch::randn({5, 3})},
        {"multi_modal_projector.b", torch::randn({7})},
        {"language_model.c", torch::randn({4, 4}).to(torch::kBFloat16)},
        {"lm_head.d", torch::randn({3, 2})}};
    std::vector<std::pair<std::string, at::Tensor>> trained;
    LoopAdamW loop;
    loop.c = c;
    for (const auto& [name, value] : params) {
      trained.emplace_back(name, value.clone().requires_grad_(true));
      loop.weights.push_back(value.to(torch::kFloat32).clone());
      loop.exp_avg.push_back(torch::zeros(value.sizes()));
      loop.exp_avg_sq.push_back(torch::zeros(value.sizes()));
      const std::string group = parameter_group_of(name);
      loop.lr.push_back(group == "vision" ? c.vision_lr : c.lr);
      loop.weight_decay.push_back(group == "projector" ? c.projector_weight_decay : c.weight_decay);
    }
    AdamW optim(named(trained), c, kernel);
    EXPECT_EQ(optim.fused(), kernel == AdamW::Kernel::kFused);
    const std::vector<double> peak_lr = loop.lr;
    for (int step = 0; step < 100; ++step) {
      const double multiplier = 0.5 * (1 + std::cos(M_PI * step / 100.0));
      optim.set_lr_multiplier(multiplier);
      std::vector<at::Tensor> grads;
      for (std::size_t i = 0; i < trained.size(); ++i) {
        at::Tensor& p = trained[i].second;
        p.mutable_grad() = torch::randn(p.sizes()).to(p.scalar_type());
        grads.push_back(p.grad());
        loop.lr[i] = peak_lr[i] * multiplier;
      }
      optim.step();
      loop.step(grads);
    }
    EXPECT_EQ(optim.steps(), 100);
    std::size_t gi = 0;
    for (const ParamGroup& g : optim.groups()) {
      for (std::size_t i = 0; i < g.params.size(); ++i, ++gi) {
        const at::Tensor ours = g.master[i].defined() ? g.master[i] : g.params[i].detach();
        EXPECT_TRUE(torch::allclose(ours, loop.weights[gi], 1e-6, 1e-6))
            << g.names[i] << ": " << (ours - loop.weights[gi]).abs().max();
        EXPECT_TRUE(torch::allclose(g.exp_avg_sq[i], loop.exp_avg_sq[gi], 1e-6, 1e-9))
            << g.names[i];
        if (g.master[i].defined()) {  // the stored bf16 weight is the master rounded
          EXPECT_TRUE(torch::equal(g.params[i].detach(), g.master[i].to(torch::kBFloat16)));
        }
      }
    }
    EXPECT_EQ(gi, params.size());
  }
}

TEST(AdamW, AStepSkippedForANonFiniteGradientChangesNothing) {
  for (const AdamW::Kernel kernel : {AdamW::Kernel::kFused, AdamW::Kernel::kPerTensor}) {
    OptimConfig c;
    c.lr = 0.1;
    c.weight_decay = 0.1;
    at::Tensor w = torch::ones({3}, torch::kBFloat16).requires_grad_(true);
    at::Tensor twin = w.detach().clone().requires_grad_(true);
    AdamW optim(named({{"language_model.w", w}}), c, kernel);
    AdamW plain(named({{"language_model.w", twin}}), c, kernel);
    w.mutable_grad() = torch::full({3}, 2.0, torch::kBFloat16);
    optim.step(torch::ones({1}));  // found_inf = 1: skipped
    EXPECT_EQ(optim.steps(), 0);
    EXPECT_TRUE(torch::equal(w, torch::ones({3}, torch::kBFloat16)));
    EXPECT_EQ(optim.groups()[0].exp_avg[0].abs().sum().item<float>(), 0.0f);
    // found_inf = 0: the step is the plain optimizer's first step.
    w.mutable_grad() = torch::full({3}, 0.5, torch::kBFloat16);
    twin.mutable_grad() = torch::full({3}, 0.5, torch::kBFloat16);
    optim.step(torch::zeros({1}));
    plain.step();
    EXPECT_EQ(optim.steps(), 1);
    EXPECT_TRUE(torch::equal(optim.groups()[0].master[0], plain.groups()[0].master[0]));
    EXPECT_TRUE(torch::equal(w, twin));
  }
}

TEST(AdamW, GroupsTakeTheirOwnLearningRates) {
  OptimConfig c;
  c.lr = 1e-3;
  c.vision_lr = 1e-4;
  c.projector_weight_decay = 0.5;
  at::Tensor v = torch::zeros({2}).requires_grad_(true);
  at::Tensor p = torch::zeros({2}).requires_grad_(true);
  at::Tensor d = torch::zeros({2}).requires_grad_(true);
  at::Tensor frozen = torch::zeros({2});
  AdamW optim(named({{"vision_tower.a", v},
                     {"multi_modal_projector.b", p},
                     {"language_model.c.lora_A", d},
                     {"lm_head.weight", frozen}}),
              c);
  ASSERT_EQ(optim.groups().size(), 3u);
  EXPECT_EQ(optim.groups()[0].name, "vision");
  EXPECT_DOUBLE_EQ(optim.groups()[0].lr, 1e-4);
  EXPECT_DOUBLE_EQ(optim.groups()[1].lr, 1e-3);
  EXPECT_DOUBLE_EQ(optim.groups()[1].weight_decay, 0.5);
  EXPECT_EQ(optim.params().size(), 3u);  // the frozen one is not trained
  optim.set_lr_multiplier(0.5);
  EXPECT_DOUBLE_EQ(optim.current_lr("vision"), 5e-5);
  // The first AdamW step moves every weight by lr (m / sqrt(v) = sign(g)).
  for (auto* t : {&v, &p, &d}) t->mutable_grad() = torch::ones({2});
  optim.step();
  EXPECT_NEAR(v[0].item<float>(), -5e-5, 1e-9);
  EXPECT_NEAR(d[0].item<float>(), -5e-4, 1e-8);
}

TEST(AdamW, Bf16ParametersKeepFp32MasterWeights) {
  // lr 1e-4 on a weight of 1.0: every single update is below bf16's resolution at 1.0 (2^-7), so
  // updating the bf16 weight directly would never move it; the fp32 master accumulates them.
  OptimConfig c;
  c.lr = 1e-4;
  at::Tensor w = torch::ones({3}, torch::kBFloat16).requires_grad_(true);
  AdamW optim(named({{"language_model.w", w}}), c);
  ASSERT_TRUE(optim.groups()[0].master[0].defined());
  for (int i = 0; i < 100; ++i) {
    w.mutable_grad() = torch::ones({3}, torch::kBFloat16);
    optim.step();
  }
  const float master = optim.groups()[0].master[0][0].item<float>();
  EXPECT_NEAR(master, 1.0f - 100 * 1e-4f, 1e-5);  // 0.99
  EXPECT_EQ(w[0].item<float>(),
            at::Tensor(torch::tensor({master}).to(torch::kBFloat16)).item<float>());
  EXPECT_LT(w[0].item<float>(), 1.0f);
  // The state round-trips, master included.
  AdamW other(named({{"language_model.w", w}}), c);
  other.load_state(optim.state());
  EXPECT_EQ(other.steps(), 100);
  EXPECT_TRUE(torch::equal(other.groups()[0].master[0], optim.groups()[0].master[0]));
}

TEST(AdamW, AllFrozenIsAnInputError) {
  OptimConfig c;
  std::string message = test::error_of([&] { AdamW optim(named({{"x", torch::zeros({1})}}), c); });
  EXPECT_NE(message.find("nothing to train"), std::string::npos);
}

TEST(ClipGradNorm, HandWorked) {
  at::Tensor a = torch::zeros({2}).requires_grad_(true);
  a.mutable_grad() = torch::tensor({3.0f, 4.0f});  // norm 5
  EXPECT_DOUBLE_EQ(clip_grad_norm({a}, 1.0), 5.0);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6f, 1e-6);
  EXPECT_NEAR(a.grad()[1].item<float>(), 0.8f, 1e-6);
  EXPECT_NEAR(grad_norm({a}), 1.0, 1e-6);
  a.mutable_grad() = torch::tensor({std::nanf(""), 1.0f});
  EXPECT_TRUE(std::isnan(clip_grad_norm({a}, 1.0)));
  EXPECT_EQ(a.grad()[1].item<float>(), 1.0f);  // a non-finite norm leaves the gradients alone

  // The tensor form: the norm stays on the device; under max_norm the gradients are unchanged
  // bit for bit; without gradients the norm is 0.
  at::Tensor b = torch::zeros({2}).requires_grad_(true);
  b.mutable_grad() = torch::tensor({0.3f, 0.4f});
  const at::Tensor norm = clip_grad_norm_tensor({b}, 1.0);
  EXPECT_EQ(norm.dim(), 0);
  EXPECT_EQ(norm.scalar_type(), torch::kFloat64);
  EXPECT_NEAR(norm.item<double>(), 0.5, 1e-7);
  EXPECT_EQ(b.grad()[0].item<float>(), 0.3f);
  EXPECT_EQ(b.grad()[1].item<float>(), 0.4f);
  EXPECT_EQ(clip_grad_norm_tensor({torch::zeros({2})}, 1.0).item<double>(), 0.0);
}

TEST(StepSums, FinishTakesMeansOverListsAndPairs) {
  // Two lists: losses 0.5 and 1.5; 3 pairs of which 2 ranked right, margins summing to 0.9.
  const StepSums sums{2.0, 1.6, 0.2, 3.0, 2.0, 0.9, 1.0, 2.0};
  StepMetrics m;
  sums.finish(m);
  EXPECT_DOUBLE_EQ(m.loss, 1.0);
  EXPECT_DOUBLE_EQ(m.objective, 0.8);
  EXPECT_DOUBLE_EQ(m.nll, 0.1);
  EXPECT_DOUBLE_EQ(m.pair_accuracy, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.mean_margin, 0.3);
  EXPECT_EQ(m.lists, 2);
  EXPECT_EQ(m.lists_without_signal, 1);
  StepMetrics none;
  StepSums{}.finish(none);  // no lists, no pairs: zeros, not NaN
  EXPECT_EQ(none.loss, 0.0);
  EXPECT_EQ(none.pair_accuracy, 0.0);
}

TEST(DataOrder, EpochsArePermutationsAndSeekContinues) {
  DataOrder order(5, 11, /*shuffle=*/true);
  std::vector<std::size_t> seen = order.take(5);
  std::vector<std::size_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  EXPECT_NE(order.permutation(0), order.permutation(1));  // a new order every epoch
  std::vector<std::size_t> next = order.take(3);          // crosses into epoch 1
  EXPECT_EQ(order.position().epoch, 1);
  EXPECT_EQ(order.position().cursor, 3);
  DataOrder resumed(5, 11, true);
  resumed.seek({1, 1});
  EXPECT_EQ(resumed.take(2), (std::vector<std::size_t>{next[1], next[2]}));
  DataOrder plain(3, 11, /*shuffle=*/false);
  EXPECT_EQ(plain.take(4), (std::vector<std::size_t>{0, 1, 2, 0}));
  DataOrder rank1(4, 0, false);
  EXPECT_EQ(rank1.take(2, /*rank=*/1, /*world=*/2), (std::vector<std::size_t>{1, 3}));
}

TEST(TensorBoard, Crc32cKnownValue) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
}

TEST(TensorBoard, ScalarsReadBack) {
  fs::path dir = test::fresh_scratch_dir("train", "tensorboard");
  fs::path file;
  {
    TensorBoardWriter tb(dir);
    tb.add_scalar("train/loss", 1, 0.5f);
    tb.add_scalar("train/loss", 2, 0.25f);
    tb.add_scalar("train/lr", 300, 5e-6f);
    tb.flush();
    file = tb.path();
  }
  EXPECT_EQ(file.filename().string().rfind("events.out.tfevents.", 0), 0u);
  std::string version;
  auto scalars = test::read_tensorboard_scalars(file, &version);
  EXPECT_EQ(version, "brain.Event:2");
  ASSERT_EQ(scalars.size(), 3u);
  EXPECT_EQ(scalars[1].tag, "train/loss");
  EXPECT_EQ(scalars[1].step, 2);
  EXPECT_EQ(scalars[1].value, 0.25f);
  EXPECT_EQ(scalars[2].step, 300);
  EXPECT_EQ(scalars[2].value, 5e-6f);
  EXPECT_GT(scalars[0].wall_time, 1.5e9);
  // A flipped byte is caught by the CRCs.
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(-6, std::ios::end);
  f.put('\x7f');
  f.close();
  EXPECT_NE(test::error_of([&] { test::read_tensorboard_scalars(file); }).find("CRC"),
            std::string::npos);
}

CheckpointContent small_checkpoint(std::int64_t step) {
  CheckpointContent c;
  c.step = step;
  c.weights = {{"language_model.w", torch::full({2, 2}, static_cast<float>(step))}};
  c.optimizer = {{"optim.__steps__", torch::tensor({step}, torch::kInt64)}};
  c.config_yaml = "run:\n  seed: 1\n";
  c.state = {{"data_epoch", 0}, {"data_cursor", step}};
  return c;
}

TEST(RunCheckpoint, SaveLoadKeepNewest) {
  fs::path root = test::fresh_scratch_dir("train", "checkpoints") / "checkpoints";
  for (int step = 1; step <= 3; ++step) save_run_checkpoint(root, small_checkpoint(step), 2);
  auto all = list_run_checkpoints(root);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].filename(), "step-2");
  EXPECT_EQ(latest_run_checkpoint(root)->filename(), "step-3");
  CheckpointContent back = load_run_checkpoint(root / "step-3");
  EXPECT_EQ(back.step, 3);
  EXPECT_EQ(back.state.at("data_cursor"), 3);
  EXPECT_TRUE(torch::equal(back.weights[0].second, torch::full({2, 2}, 3.0f)));
}

TEST(RunCheckpoint, FailureMidWriteLeavesThePreviousOne) {
  fs::path root = test::fresh_scratch_dir("train", "checkpoint_fault") / "checkpoints";
  save_run_checkpoint(root, small_checkpoint(1), 3);
  auto fail = [](const std::string& written) {
    if (written == "optimizer.safetensors") throw std::runtime_error("No space left on device");
  };
  std::string message =
      test::error_of([&] { save_run_checkpoint(root, small_checkpoint(2), 3, fail); });
  EXPECT_NE(message.find("No space left on device"), std::string::npos);
  EXPECT_NE(message.find("step-2"), std::string::npos);
  EXPECT_FALSE(fs::exists(root / "step-2"));
  EXPECT_EQ(remove_partial_checkpoints(root), 0);  // the temporary folder was removed already
  EXPECT_EQ(latest_run_checkpoint(root)->filename(), "step-1");
  EXPECT_EQ(load_run_checkpoint(root / "step-1").step, 1);
  // A folder without trainer_state.json (what SIGKILL leaves) is not a checkpoint.
  fs::create_directories(root / ".tmp-step-5-1");
  fs::create_directories(root / "step-9");
  EXPECT_EQ(latest_run_checkpoint(root)->filename(), "step-1");
  EXPECT_EQ(remove_partial_checkpoints(root), 1);
  EXPECT_NE(test::error_of([&] { load_run_checkpoint(root / "step-9"); }).find("not a perpo"),
            std::string::npos);
}

TEST(Resume, ConfigDifferencesNameTheKeys) {
  Config a, b;
  b.model.lora.r = 64;
  b.loss.beta = 0.2;
  b.train.max_steps = 99;  // may differ
  b.run.threads = 3;       // may differ
  auto diffs = resume_config_differences(a, b);
  ASSERT_EQ(diffs.size(), 2u);
  EXPECT_EQ(diffs[0], "loss.beta: 0.1 in the checkpoint, 0.2 now");
  EXPECT_NE(diffs[1].find("model.lora.r: 128 in the checkpoint, 64 now"), std::string::npos);
  EXPECT_TRUE(resume_config_differences(a, a).empty());
  EXPECT_GT(flatten_config(a).size(), 60u);
  EXPECT_EQ(flatten_config(a).at("optim.schedule"), "cosine");
}

TEST(Resume, RngStatesRoundTrip) {
  torch::manual_seed(5);
  RngStates saved = capture_rng_states(false);
  at::Tensor first = torch::rand({4});
  torch::manual_seed(99);
  restore_rng_states(saved.tensors, saved.host);
  EXPECT_TRUE(torch::equal(torch::rand({4}), first));
}

}  // namespace
}  // namespace perpo
