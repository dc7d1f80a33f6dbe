// Collation into padded tensors (see collate.h for the shapes).
#include "perpo/batch/collate.h"

#include <torch/types.h>

#include <algorithm>

#include "perpo/core/error.h"

namespace perpo {

at::Tensor pixels_to_tensor(const PixelValues& pixels) {
  const std::size_t expected =
      static_cast<std::size_t>(pixels.channels) * pixels.height * pixels.width;
  PERPO_CHECK(pixels.channels == 3 && pixels.height > 0 && pixels.width > 0 &&
                  pixels.data.size() == expected,
              "pixel values must be (3, H, W) with H, W > 0 and 3*H*W floats, got (",
              pixels.channels, ", ", pixels.height, ", ", pixels.width, ") with ",
              pixels.data.size(), " floats");
  return torch::from_blob(const_cast<float*>(pixels.data.data()),
                          {pixels.channels, pixels.height, pixels.width}, torch::kFloat32)
      .clone();  // (3, H, W)
}

namespace {

at::Tensor stack_pixels(const std::vector<PixelValues>& pixels) {
  std::vector<at::Tensor> images;
  for (const PixelValues& image : pixels) {
    PERPO_CHECK(image.height == pixels.front().height && image.width == pixels.front().width,
                "images of one batch must share a size, got ", pixels.front().height, "x",
                pixels.front().width, " and ", image.height, "x", image.width);
    images.push_back(pixels_to_tensor(image));
  }
  return torch::stack(images);  // (B, 3, H, W)
}

at::Tensor to_float_tensor(const std::vector<double>& values) {
  return torch::tensor(values, torch::kFloat64).to(torch::kFloat32);
}

}  // namespace

SftBatch collate_sft(const std::vector<SftExample>& examples,
                     const std::vector<PixelValues>& pixels, int pad_id) {
  PERPO_CHECK(!examples.empty(), "cannot collate an empty SFT batch");
  PERPO_CHECK(pixels.size() <= examples.size(), "SFT batch has ", examples.size(), " examples but ",
              pixels.size(), " images");
  const std::int64_t batch = static_cast<std::int64_t>(examples.size());
  std::int64_t longest = 0;
  for (const SftExample& example : examples) {
    longest =
        std::max<std::int64_t>(longest, example.prompt_ids.size() + example.answer_ids.size());
  }
  const std::int64_t pad = pad_id >= 0 ? pad_id : 0;
  SftBatch out;
  out.input_ids = torch::full({batch, longest}, pad, torch::kInt64);        // (B, T)
  out.labels = torch::full({batch, longest}, kIgnoreLabel, torch::kInt64);  // (B, T)
  out.attention_mask = torch::zeros({batch, longest}, torch::kInt64);       // (B, T)
  std::int64_t longest_answer = 1;
  for (const SftExample& example : examples) {
    longest_answer = std::max<std::int64_t>(longest_answer, example.answer_ids.size());
  }
  out.answer_start = torch::zeros({batch}, torch::kInt64);                 // (B)
  out.answer_mask = torch::zeros({batch, longest_answer}, torch::kInt64);  // (B, A)
  auto ids = out.input_ids.accessor<std::int64_t, 2>();
  auto labels = out.labels.accessor<std::int64_t, 2>();
  auto mask = out.attention_mask.accessor<std::int64_t, 2>();
  auto start = out.answer_start.accessor<std::int64_t, 1>();
  auto answer_mask = out.answer_mask.accessor<std::int64_t, 2>();
  for (std::int64_t b = 0; b < batch; ++b) {
    const SftExample& example = examples[b];
    std::int64_t t = 0;
    for (int id : example.prompt_ids) {
      ids[b][t] = id;
      mask[b][t++] = 1;
    }
    start[b] = t;
    for (std::size_t a = 0; a < example.answer_ids.size(); ++a) {
      ids[b][t] = example.answer_ids[a];
      labels[b][t] = example.answer_ids[a];
      answer_mask[b][static_cast<std::int64_t>(a)] = 1;
      mask[b][t++] = 1;
    }
    out.tokens += t;
  }
  if (!pixels.empty()) out.pixel_values = stack_pixels(pixels);  // (I, 3, H, W)
  return out;
}

ListBatch collate_list(const ListExample& example, const PixelValues& pixels, int pad_id) {
  const std::size_t n = example.answer_ids.size();
  PERPO_CHECK(n >= 2, example.source.to_string(), ": a list needs at least 2 answers, got ", n);
  PERPO_CHECK(example.rewards.size() == n, example.source.to_string(), ": ", example.rewards.size(),
              " rewards for ", n, " answers");
  PERPO_CHECK(example.ref_logps.empty() || example.ref_logps.size() == n,
              example.source.to_string(), ": ", example.ref_logps.size(), " ref_logps for ", n,
              " answers");
  PERPO_CHECK(!example.prompt_ids.empty(), example.source.to_string(), ": empty prompt");
  std::int64_t longest = 0;
  for (const auto& answer : example.answer_ids) {
    PERPO_CHECK(!answer.empty(), example.source.to_string(), ": an answer has no tokens");
    longest = std::max<std::int64_t>(longest, answer.size());
  }
  const std::int64_t rows = static_cast<std::int64_t>(n);
  ListBatch out;
  out.prefix_ids =
      torch::tensor(std::vector<std::int64_t>(example.prompt_ids.begin(), example.prompt_ids.end()),
                    torch::kInt64);                          // (P)
  out.pixel_values = pixels_to_tensor(pixels).unsqueeze(0);  // (1, 3, H, W)
  out.answer_ids = torch::full({rows, longest}, pad_id >= 0 ? pad_id : 0, torch::kInt64);  // (N, A)
  out.answer_mask = torch::zeros({rows, longest}, torch::kInt64);                          // (N, A)
  auto ids = out.answer_ids.accessor<std::int64_t, 2>();
  auto mask = out.answer_mask.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < rows; ++i) {
    const auto& answer = example.answer_ids[i];
    for (std::size_t j = 0; j < answer.size(); ++j) {
      ids[i][j] = answer[j];
      mask[i][j] = 1;
    }
  }
  out.rewards = to_float_tensor(example.rewards);                                      // (N)
  if (!example.ref_logps.empty()) out.ref_logps = to_float_tensor(example.ref_logps);  // (N)
  return out;
}

}  // namespace perpo
