// The work behind `perpo logps`: the sampling model's summed log-prob of every answer of every
// list in a file (our JSONL or the authors' JSON), written as `ref_logps` into a JSONL copy.
// Same numbers as `perpo sample` writes (both call list_logps).
//
//   perpo::LogpsSummary s = perpo::logps_file(*model, prompts, config, "in.json", "out.jsonl");
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/dist/process_group.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/model/vlm.h"

namespace perpo {

struct LogpsSummary {
  std::string format;       // "perpo" or "authors": how the input was read
  std::size_t lists = 0;    // lists written
  std::size_t answers = 0;  // answers scored
  std::size_t skipped = 0;  // bad lists left out (data.on_bad_record: skip), reading included
  std::vector<std::string> skip_messages;  // the first 20
  double logp_sum = 0;
  double seconds = 0;

  std::string to_text() const;
};

/// Reads `input` (`format`: auto | perpo | authors), computes ref_logps for every list (an
/// existing ref_logps is replaced), writes `output` atomically (complete or untouched). Lists
/// without rewards are fine. A bad list (missing image, prompt over data.max_prompt_tokens)
/// throws perpo::Error (input) naming it, or is skipped and counted with on_bad_record=skip.
/// Data parallel (`group` of W > 1 ranks, every rank calls it): rank r scores lists r, r + W, ...
/// and writes them to a part file beside `output`; rank 0 then writes `output` with every rank's
/// lists in the input's order (the file one process writes) and removes the parts. Rank 0's
/// summary counts every rank's lists.
LogpsSummary logps_file(VisionLanguageModel& model, RecordPrompts& prompts, const Config& config,
                        const std::filesystem::path& input, const std::filesystem::path& output,
                        const std::string& format = "auto", const ProcessGroup* group = nullptr);

}  // namespace perpo
