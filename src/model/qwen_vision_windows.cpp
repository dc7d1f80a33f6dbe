#include "perpo/model/qwen_vision_windows.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "perpo/core/error.h"
#include "perpo/model/attention.h"

namespace perpo {
namespace {

torch::Tensor long_tensor(const std::vector<std::int64_t>& values, const torch::Device& device) {
  return torch::tensor(values, torch::dtype(torch::kLong)).to(device);
}

}  // namespace

std::vector<VisionGrid> read_grid_thw(const torch::Tensor& grid_thw,
                                      const QwenVisionConfig& config) {
  PERPO_CHECK_INPUT(grid_thw.dim() == 2 && grid_thw.size(1) == 3 && grid_thw.size(0) >= 1 &&
                        !grid_thw.is_floating_point(),
                    "grid_thw must be an integer tensor (images, 3), got ", grid_thw.sizes(), " ",
                    grid_thw.scalar_type());
  torch::Tensor rows = grid_thw.to(torch::kCPU, torch::kLong).contiguous();
  const std::int64_t* values = rows.data_ptr<std::int64_t>();
  const int merge = config.spatial_merge_size;
  std::vector<VisionGrid> grids;
  for (std::int64_t i = 0; i < rows.size(0); ++i) {
    VisionGrid grid{values[3 * i], values[3 * i + 1], values[3 * i + 2]};
    PERPO_CHECK_INPUT(grid.t >= 1 && grid.h >= merge && grid.w >= merge && grid.h % merge == 0 &&
                          grid.w % merge == 0 && grid.h <= (1 << 20) && grid.w <= (1 << 20) &&
                          grid.t <= (1 << 20),
                      "grid_thw row ", i, " is (", grid.t, ", ", grid.h, ", ", grid.w,
                      "): t must be >= 1 and h, w positive multiples of spatial_merge_size ",
                      merge);
    grids.push_back(grid);
  }
  return grids;
}

WindowLayout window_layout(const std::vector<VisionGrid>& grids, const QwenVisionConfig& config) {
  const std::int64_t merge = config.spatial_merge_size, side = config.merged_window();
  WindowLayout layout;
  std::int64_t offset = 0;  // merged tokens of the images before this one
  for (const VisionGrid& grid : grids) {
    const std::int64_t rows = grid.h / merge, cols = grid.w / merge;
    // transformers pads by side - rows % side: a whole empty window row when side divides rows.
    const std::int64_t windows_down = (rows + side - rows % side) / side;
    const std::int64_t windows_across = (cols + side - cols % side) / side;
    for (std::int64_t frame = 0; frame < grid.t; ++frame) {
      for (std::int64_t wy = 0; wy < windows_down; ++wy) {
        for (std::int64_t wx = 0; wx < windows_across; ++wx) {
          std::int64_t tokens = 0;
          for (std::int64_t y = wy * side; y < std::min((wy + 1) * side, rows); ++y) {
            for (std::int64_t x = wx * side; x < std::min((wx + 1) * side, cols); ++x) {
              layout.window_index.push_back(offset + (frame * rows + y) * cols + x);
              ++tokens;
            }
          }
          // An empty window repeats cu_window_seqlens' last value: unique_consecutive drops it.
          if (tokens > 0) layout.window_patches.push_back(tokens * config.merge_unit());
        }
      }
    }
    offset += grid.t * rows * cols;
  }
  return layout;
}

std::vector<std::int64_t> frame_patches(const std::vector<VisionGrid>& grids) {
  std::vector<std::int64_t> lengths;
  for (const VisionGrid& grid : grids) lengths.insert(lengths.end(), grid.t, grid.h * grid.w);
  return lengths;
}

torch::Tensor vision_rotary_angles(const std::vector<VisionGrid>& grids,
                                   const QwenVisionConfig& config, const torch::Device& device) {
  const std::int64_t merge = config.spatial_merge_size;
  std::vector<std::int64_t> positions;  // (S, 2): row, column of each patch in pixel_values order
  std::int64_t longest_side = 0;
  for (const VisionGrid& grid : grids) {
    longest_side = std::max({longest_side, grid.h, grid.w});
    for (std::int64_t frame = 0; frame < grid.t; ++frame) {
      for (std::int64_t block_y = 0; block_y < grid.h / merge; ++block_y) {
        for (std::int64_t block_x = 0; block_x < grid.w / merge; ++block_x) {
          for (std::int64_t dy = 0; dy < merge; ++dy) {
            for (std::int64_t dx = 0; dx < merge; ++dx) {
              positions.push_back(block_y * merge + dy);
              positions.push_back(block_x * merge + dx);
            }
          }
        }
      }
    }
  }
  // Qwen2_5_VisionRotaryEmbedding(head_dim / 2): the same float32 operations as transformers.
  const std::int64_t dim = config.head_dim() / 2;
  auto floats = torch::dtype(torch::kFloat).device(device);
  torch::Tensor inv_freq = 1.0 / torch::pow(10000.0, torch::arange(0, dim, 2, floats) / dim);
  torch::Tensor table = torch::outer(torch::arange(longest_side, floats), inv_freq);  // (L, D/4)
  const auto S = static_cast<std::int64_t>(positions.size() / 2);
  return table.index_select(0, long_tensor(positions, device)).view({S, dim});  // (S, D/2)
}

AttentionSegments make_segments(const std::vector<std::int64_t>& lengths,
                                const torch::Device& device) {
  AttentionSegments segments;
  if (lengths.size() == 1) {
    segments.groups.push_back(
        torch::arange(lengths[0], torch::dtype(torch::kLong).device(device)).view({1, lengths[0]}));
    return segments;
  }
  std::map<std::int64_t, std::vector<std::int64_t>> positions_by_length;
  std::int64_t start = 0;
  for (std::int64_t length : lengths) {
    auto& positions = positions_by_length[length];
    for (std::int64_t i = 0; i < length; ++i) positions.push_back(start + i);
    start += length;
  }
  std::vector<std::int64_t> order;  // sequence position of each row of the concatenated groups
  for (const auto& [length, positions] : positions_by_length) {
    const auto count = static_cast<std::int64_t>(positions.size()) / length;
    segments.groups.push_back(long_tensor(positions, device).view({count, length}));
    order.insert(order.end(), positions.begin(), positions.end());
  }
  std::vector<std::int64_t> restore(order.size());
  for (std::size_t row = 0; row < order.size(); ++row) {
    restore[order[row]] = static_cast<std::int64_t>(row);
  }
  segments.restore = long_tensor(restore, device);
  return segments;
}

torch::Tensor segment_attention(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const AttentionSegments& segments,
                                double scale) {
  const auto H = q.size(1), D = q.size(2);
  const bool use_sdpa = attention_impl() == AttentionImpl::sdpa;
  std::vector<torch::Tensor> outputs;
  for (const torch::Tensor& group : segments.groups) {
    const auto count = group.size(0), length = group.size(1);
    auto gather = [&](const torch::Tensor& t) {  // (S, H, D) -> (n, H, len, D)
      torch::Tensor rows = segments.restore.defined() ? t.index_select(0, group.flatten()) : t;
      return rows.view({count, length, H, D}).transpose(1, 2);
    };
    torch::Tensor gq = gather(q), gk = gather(k), gv = gather(v);
    torch::Tensor out = use_sdpa ? sdpa(gq, gk, gv, {}, /*causal=*/false, scale)
                                 : attend(gq, {}, {}, gk, gv, {}, scale);  // (n, H, len, D)
    outputs.push_back(out.transpose(1, 2).reshape({count * length, H, D}));
  }
  if (!segments.restore.defined()) return outputs[0];               // (S, H, D)
  return torch::cat(outputs, 0).index_select(0, segments.restore);  // (S, H, D)
}

}  // namespace perpo
