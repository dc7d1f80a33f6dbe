// train.eval_every: evaluate() on data.eval as a TrainerHooks::evaluate (train_eval.h).
#include "perpo/eval/train_eval.h"

#include <memory>
#include <vector>

#include "perpo/core/error.h"
#include "perpo/data/jsonl.h"
#include "perpo/eval/evaluate.h"

namespace perpo {

TrainingEvaluator training_evaluator(const Config& config) {
  if (config.data.eval.empty()) {
    throw input_error("train.eval_every > 0 needs key 'data.eval': the dataset records to evaluate")
        .hint("set data.eval=FILE.jsonl, or train.eval_every=0");
  }
  auto records = std::make_shared<std::vector<DatasetRecord>>(
      read_dataset(config.data.eval, ReadOptions::from(config.data)));
  if (records->empty()) {
    throw input_error("data.eval ", config.data.eval, " holds no usable record")
        .hint("evaluation reads dataset records (id, image, prompt, ground_truth, task)");
  }
  return [config, records](LoadedModel& policy, std::int64_t) {
    RecordPrompts prompts(*policy.model, *policy.tokenizer, config);
    EvalResult result = evaluate(*policy.model, prompts, *records, config);
    std::map<std::string, double> values;
    for (const auto& [key, value] : result.metrics.items()) {
      if (value.is_object()) {
        for (const auto& [name, number] : value.items()) {
          if (number.is_number()) values[key + "/" + name] = number.get<double>();
        }
      } else if (value.is_number()) {
        values[key] = value.get<double>();  // records, evaluated, skipped
      }
    }
    return values;
  };
}

}  // namespace perpo
