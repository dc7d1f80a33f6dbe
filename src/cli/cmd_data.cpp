// perpo data synth --task grounding|ocr --n K --out DIR [--seed S]: synthetic records + PNGs.
// The work is perpo::write_synth_dataset (synth/synth.h); this file only maps flags onto it.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "perpo/synth/synth.h"

namespace perpo::cli {

void register_data(CLI::App& app, CommandRegistry& registry) {
  auto* data = app.add_subcommand("data", "Make datasets (synthetic perception tasks)");
  data->require_subcommand(1);
  auto* synth = data->add_subcommand(
      "synth", "Write synthetic grounding or OCR records plus PNG images (the demo's tasks)");
  synth->footer(
      "Writes DIR/records.jsonl (dataset records: id, task, image, prompt, ground_truth) and\n"
      "DIR/images/<id>.png. grounding: 1-5 coloured shapes; the prompt asks for the box of one\n"
      "named by a referring expression (\"the small red circle\", \"the square left of the blue\n"
      "triangle\", \"the largest shape\"), unambiguous by construction; ground truth\n"
      "\"[x1, y1, x2, y2]\" normalised, two decimals. ocr: 1 .. --max-words words in DejaVu Sans; "
      "the\n"
      "ground truth is the text. The same --seed gives byte-identical files; --first-index draws\n"
      "a disjoint range of the same seed (e.g. an eval set). DIR must be new, empty or written\n"
      "by perpo before, unless --force (nothing in it is deleted; files of the same name are\n"
      "replaced). DIR/synth.json records the options.");
  auto options = std::make_shared<SynthOptions>();
  auto out = std::make_shared<std::string>();
  synth->add_option("--task,-t", options->task, "grounding | ocr")
      ->required()
      ->check(CLI::IsMember(synth_task_names()));
  synth->add_option("--n,-n", options->count, "number of records, e.g. 1000")->required();
  synth->add_option("--out,-o", *out, "output folder (new or empty)")->required();
  synth->add_option("--seed,-s", options->seed, "generator seed (>= 0)")
      ->capture_default_str()
      ->check(whole_number_validator());
  synth
      ->add_option("--first-index", options->first_index,
                   "number of the first record (records first..first+n-1 of the seed's stream)")
      ->capture_default_str()
      ->check(whole_number_validator());
  synth->add_option("--image-size", options->image_size, "image side in pixels")
      ->capture_default_str();
  synth->add_option("--noise", options->noise, "uniform pixel noise amplitude, 8-bit levels")
      ->capture_default_str();
  synth
      ->add_option("--max-shapes", options->max_shapes,
                   "grounding: 1 .. this many shapes per image")
      ->capture_default_str();
  synth->add_option("--max-words", options->max_words, "ocr: 1 .. this many words per line")
      ->capture_default_str();
  synth
      ->add_option("--lexicon", options->lexicon,
                   "ocr: words drawn from this many of the 140 (evenly spaced); 0 = all")
      ->capture_default_str();
  synth
      ->add_option("--min-text-height", options->min_text_height,
                   "ocr: smallest font height, share of the image side")
      ->capture_default_str();
  synth
      ->add_option("--max-text-height", options->max_text_height,
                   "ocr: largest font height, share of the image side")
      ->capture_default_str();
  synth->add_option("--inverted", options->inverted, "ocr: share of lines drawn light on dark")
      ->capture_default_str();
  synth->add_option("--font", options->font,
                    "TrueType font for ocr (default: DejaVu Sans of fonts-dejavu-core)");
  synth->add_flag("--force", options->force,
                  "write into a folder that holds files perpo did not write");

  registry.add(synth, [options, out] {
    const SynthSummary summary = write_synth_dataset(*out, *options);
    std::printf("wrote %zu %s records to %s (images in %s, %.1f KiB, %.2f s)\n", summary.records,
                options->task.c_str(), summary.records_file.string().c_str(),
                (summary.records_file.parent_path() / "images").string().c_str(),
                summary.image_bytes / 1024.0, summary.seconds);
    return 0;
  });
}

}  // namespace perpo::cli
