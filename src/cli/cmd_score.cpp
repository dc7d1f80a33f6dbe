// perpo score --reward NAME --input L.jsonl --output O.jsonl: scores the answers of list records.
// The work is perpo::score_list_file (data/score_lists.h); this file only maps flags onto it.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "perpo/config/config_io.h"
#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/data/score_lists.h"
#include "perpo/reward/reward_config.h"

namespace perpo::cli {

void register_score(CLI::App& app, CommandRegistry& registry) {
  auto* score = app.add_subcommand(
      "score", "Score every answer of every list against its ground truth with a named reward");
  score->footer(
      "Input: preference lists, JSONL records with 'answers' (N >= 2 strings) and 'ground_truth'\n"
      "(optional 'image_width'/'image_height' in pixels for pixel boxes, 'box_units' for the\n"
      "units a sampled model wrote its boxes in; reward.box_format overrides), or the authors'\n"
      "JSON list\n"
      "(items with 'answers_gen' and 'answer'), detected by a leading '['. The input is read "
      "once,\n"
      "so a pipe works: --input <(zcat lists.jsonl.gz). Output: perpo's JSONL lists, each with\n"
      "'rewards' and 'reward_notes' (ok, no_box, malformed_box, empty_answer, ...), written\n"
      "atomically; it may not be the input; a FIFO or device (/dev/stdout) is written in place.\n"
      "Prints the mean reward, a histogram and the notes counted.");
  struct Options {
    std::string reward;
    std::string input;
    std::string output;
    std::string input_format = "auto";
    std::string box_select;
    bool normalize_whitespace = false;
    bool lowercase = false;
    double image_width = 0;
    double image_height = 0;
    std::string config;
    std::vector<std::string> overrides;
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  score->add_option(
      "--reward,-r", options->reward,
      "reward name: " + join(reward_names(), ", ") + " (default: reward.name of --config)");
  score->add_option("--input,-i", options->input, "list records to score (JSONL or authors' JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  score->add_option("--output,-o", options->output, "JSONL to write (records + rewards)")
      ->required();
  score->add_option("--input-format", options->input_format, "auto | ours | authors")
      ->capture_default_str();
  score->add_option("--box-select", options->box_select,
                    "first | last | best: which box (or number) of several is scored "
                    "(default first, or reward.box_select of --config)");
  score->add_flag("--normalize-whitespace", options->normalize_whitespace,
                  "collapse runs of whitespace before comparing text");
  score->add_flag("--lowercase", options->lowercase, "compare text case-insensitively");
  auto* width = score->add_option(
      "--image-width", options->image_width,
      "image width in pixels, to normalise pixel boxes (records may carry their own)");
  auto* height =
      score->add_option("--image-height", options->image_height, "image height in pixels");
  score->add_option("--config,-c", options->config, "YAML config whose `reward` section to use")
      ->check(CLI::ExistingFile);
  score->add_flag("--force", options->force, "replace an existing --output file");
  score->add_option("overrides", options->overrides,
                    "key=value config overrides, e.g. reward.lowercase=true");

  registry.add(score, [options, width, height] {
    for (auto [option, value] :
         {std::pair{width, options->image_width}, std::pair{height, options->image_height}}) {
      if (option->count() > 0 && !(std::isfinite(value) && value > 0)) {
        throw input_error(option->get_name(), " must be a positive number of pixels, got ",
                          option->as<std::string>())
            .hint("e.g. " + option->get_name() + " 640");
      }
    }
    ScoreFileOptions score_options;
    RewardConfig reward_config;
    if (!options->config.empty() || !options->overrides.empty()) {
      reward_config = load_config(options->config, options->overrides).reward;
    }
    if (!options->box_select.empty()) reward_config.box_select = options->box_select;
    reward_config.normalize_whitespace |= options->normalize_whitespace;
    reward_config.lowercase |= options->lowercase;
    score_options.options = reward_options_from(reward_config);
    score_options.options.box_parse.image_width = options->image_width;
    score_options.options.box_parse.image_height = options->image_height;
    score_options.reward = options->reward.empty() ? reward_config.name : options->reward;
    if (score_options.reward.empty()) {
      throw input_error("perpo score needs a reward")
          .hint("pass --reward NAME (" + join(reward_names(), ", ") +
                ") or a --config with reward.name set");
    }
    score_options.format = parse_list_input_format(options->input_format);
    score_options.force = options->force;
    if (!options->config.empty()) score_options.inputs.emplace_back(options->config);
    ScoreSummary summary = score_list_file(options->input, options->output, score_options);
    std::fputs(summary.to_text().c_str(), stdout);
    std::printf("wrote %s\n", options->output.c_str());
    return 0;
  });
}

}  // namespace perpo::cli
