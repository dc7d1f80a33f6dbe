#include "perpo/model/qwen_rope.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>

#include "perpo/core/error.h"

namespace perpo {

MultimodalRotary::MultimodalRotary(const TextConfig& text, const std::vector<int>& mrope_section) {
  const std::int64_t dim = text.effective_head_dim();
  std::int64_t sum = 0;
  for (int part : mrope_section) sum += part;
  PERPO_CHECK_INPUT(
      mrope_section.size() == 3 && 2 * sum == dim &&
          std::all_of(mrope_section.begin(), mrope_section.end(),
                      [](int part) { return part >= 0; }),
      "mrope_section must be three non-negative sizes summing to head_dim / 2 = ", dim / 2);
  // inv_freq[i] = 1 / theta^(2i / D), as transformers (fp32 from an int64 arange)
  torch::Tensor exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat) / dim;
  inv_freq_ = 1.0 / torch::pow(text.rope_theta, exponents);  // (D/2)
  std::vector<std::int64_t> rows;
  for (std::int64_t row = 0; row < 3; ++row) rows.insert(rows.end(), mrope_section[row], row);
  row_of_ = torch::tensor(rows, torch::kInt64);  // (D/2)
}

std::pair<torch::Tensor, torch::Tensor> MultimodalRotary::cos_sin(const torch::Tensor& positions,
                                                                  torch::ScalarType dtype) const {
  PERPO_CHECK(positions.dim() == 3 && positions.size(0) == 3,
              "multimodal positions must be (3, B, T), got ", positions.sizes());
  torch::Tensor inv_freq, row_of;
  {
    std::lock_guard<std::mutex> lock(move_);
    if (inv_freq_.device() != positions.device()) {
      inv_freq_ = inv_freq_.to(positions.device());
      row_of_ = row_of_.to(positions.device());
    }
    inv_freq = inv_freq_;
    row_of = row_of_;
  }
  // Frequency i takes its row's position: (3, B, T) -> (D/2, B, T) -> (B, T, D/2).
  torch::Tensor chosen = positions.index_select(0, row_of).permute({1, 2, 0});
  torch::Tensor freqs = chosen.to(torch::kFloat) * inv_freq;           // (B, T, D/2)
  torch::Tensor angles = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // (B, 1, T, D)
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

namespace {

/// get_rope_index for one row's real tokens: their positions (3 per token), appended to `out`.
/// `next_image` walks image_grid_thw's rows.
void row_positions(const std::vector<std::int64_t>& tokens, const Qwen2_5VLConfig& config,
                   const std::vector<std::array<std::int64_t, 3>>& grids, std::size_t& next_image,
                   std::vector<std::array<std::int64_t, 3>>& out) {
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  // transformers counts the images as the vision_start tokens followed by an image token.
  std::int64_t images = 0;
  for (std::int64_t k = 0; k + 1 < n; ++k) {
    images += tokens[k] == config.vision_start_token_id && tokens[k + 1] == config.image_token_id;
  }
  const std::int64_t merge = config.vision.spatial_merge_size;
  std::int64_t start = 0;  // first token not yet placed
  std::int64_t next = 0;   // the position the next text token takes
  auto add_text = [&](std::int64_t end) {
    for (std::int64_t k = start; k < end; ++k) {
      const std::int64_t p = next + (k - start);
      out.push_back({p, p, p});
    }
    next += end - start;
    start = end;
  };
  for (std::int64_t image = 0; image < images; ++image) {
    auto found = std::find(tokens.begin() + start, tokens.end(), config.image_token_id);
    PERPO_CHECK_INPUT(found != tokens.end(), "input_ids announce an image with no image token");
    PERPO_CHECK_INPUT(next_image < grids.size(),
                      "input_ids hold more images than image_grid_thw's ", grids.size(), " rows");
    const auto& grid = grids[next_image++];
    add_text(found - tokens.begin());
    const std::int64_t gt = grid[0], gh = grid[1] / merge, gw = grid[2] / merge;
    PERPO_CHECK_INPUT(start + gt * gh * gw <= n, "an image of grid (", grid[0], ", ", grid[1], ", ",
                      grid[2], ") needs ", gt * gh * gw, " image tokens; input_ids hold ",
                      n - start, " tokens after its first");
    for (std::int64_t t = 0; t < gt; ++t) {  // a still image: temporal index 0 on every frame
      for (std::int64_t y = 0; y < gh; ++y) {
        for (std::int64_t x = 0; x < gw; ++x) out.push_back({next, next + y, next + x});
      }
    }
    next += std::max<std::int64_t>({gh, gw, 1});  // the image's largest position + 1
    start += gt * gh * gw;
  }
  add_text(n);
}

}  // namespace

RopeIndex qwen_rope_index(const torch::Tensor& input_ids, const torch::Tensor& image_grid_thw,
                          const torch::Tensor& attention_mask, const Qwen2_5VLConfig& config) {
  PERPO_CHECK_INPUT(input_ids.dim() == 2, "input_ids must be (B, T), got ", input_ids.sizes());
  const std::int64_t B = input_ids.size(0), T = input_ids.size(1);
  if (attention_mask.defined()) {
    PERPO_CHECK_INPUT(attention_mask.sizes() == input_ids.sizes(), "attention_mask ",
                      attention_mask.sizes(), " must have input_ids' shape ", input_ids.sizes());
  }
  std::vector<std::array<std::int64_t, 3>> grids;
  if (image_grid_thw.defined() && image_grid_thw.numel() > 0) {
    PERPO_CHECK_INPUT(image_grid_thw.dim() == 2 && image_grid_thw.size(1) == 3,
                      "image_grid_thw must be (I, 3), got ", image_grid_thw.sizes());
    torch::Tensor g = image_grid_thw.to(torch::kCPU, torch::kInt64).contiguous();
    const std::int64_t* v = g.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < g.size(0); ++i)
      grids.push_back({v[3 * i], v[3 * i + 1], v[3 * i + 2]});
  }
  torch::Tensor ids = input_ids.to(torch::kCPU, torch::kInt64).contiguous();
  torch::Tensor real = attention_mask.defined() ? attention_mask.to(torch::kCPU).ne(0).contiguous()
                                                : torch::ones({B, T}, torch::kBool);
  const std::int64_t* id = ids.data_ptr<std::int64_t>();
  const bool* keep = real.data_ptr<bool>();

  torch::Tensor positions = torch::ones({3, B, T}, torch::kInt64);
  torch::Tensor deltas = torch::empty({B}, torch::kInt64);
  auto pos = positions.accessor<std::int64_t, 3>();
  auto delta = deltas.accessor<std::int64_t, 1>();
  std::size_t next_image = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    std::vector<std::int64_t> tokens, columns;
    for (std::int64_t t = 0; t < T; ++t) {
      if (keep[b * T + t]) {
        tokens.push_back(id[b * T + t]);
        columns.push_back(t);
      }
    }
    PERPO_CHECK_INPUT(!tokens.empty(), "row ", b, " of attention_mask holds no real token");
    std::vector<std::array<std::int64_t, 3>> row;
    row_positions(tokens, config, grids, next_image, row);
    std::int64_t largest = 0;
    for (std::size_t k = 0; k < row.size(); ++k) {
      for (std::int64_t r = 0; r < 3; ++r) {
        pos[r][b][columns[k]] = row[k][r];
        largest = std::max(largest, row[k][r]);
      }
    }
    delta[b] = largest + 1 - T;
  }
  PERPO_CHECK_INPUT(next_image == grids.size(), "image_grid_thw has ", grids.size(),
                    " rows but input_ids hold ", next_image, " images");
  return {positions.to(input_ids.device()), deltas.to(input_ids.device())};
}

torch::Tensor qwen_continuation_positions(std::int64_t past_len, std::int64_t new_len,
                                          const torch::Tensor& deltas) {
  PERPO_CHECK(deltas.dim() == 1, "rope deltas must be (B), got ", deltas.sizes());
  torch::Tensor steps =
      torch::arange(past_len, past_len + new_len, deltas.options().dtype(torch::kInt64));
  torch::Tensor rows = steps.unsqueeze(0) + deltas.to(torch::kInt64).unsqueeze(1);  // (B, T)
  return rows.unsqueeze(0).expand({3, -1, -1}).contiguous();                        // (3, B, T)
}

}  // namespace perpo
